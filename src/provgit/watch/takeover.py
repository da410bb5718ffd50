"""Elements a replica takes over while a run of its own goes on (issue #19).

A replica runs one reconcile at a time over the elements it holds; an element
it claims from a replica that died would wait for that run to end, however
long (a large apply on a slow element), and the failover time is lease time +
that. So an element claimed during a run gets a run of its own at once, beside
the one going on:

- the two runs write to disjoint elements (`Replica.busy`: a run takes only
  elements no other run of ours writes to), each under the lease tokens it
  began with, through its own journal connections fenced by those tokens;
- the takeover run applies the config the loop's run applies (settling the
  dead holder's open intents first, by observing), and leaves the
  network-wide steps (the applied commit, git notes, proposals, the retry and
  release timers) to the loop's runs;
- planning and report writing take turns (`Reconciler.plan_lock`,
  `report_lock`), so the stage cache and the report files see one run at a time.

Until the takeover run writes its first status row, the element's status
is what its last holder journaled (never "Sync Completed" for an apply it did
not finish), and the live status shows the takeover run's progress.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from provgit.api.watching import database_errors
from provgit.watch.journals import Journals
from provgit.watch.replicas import Replica
from provgit.watch.run import Reconciler


class Takeovers:
    def __init__(
        self,
        main: Reconciler,
        replica: Replica,
        running: Callable[[], bool],
        rerun: Callable[[str], None],
    ) -> None:
        self.main = main
        self.running = running  # whether the loop's run goes on
        self.rerun = rerun  # asks the loop for a run (Watcher.trigger)
        self.replica = replica
        self.log = log = main.log
        journals = Journals(main.o.state_dir)
        journals.fences = (
            replica.fences(lambda: self.reconciler.run_tokens),
            replica.lease_seconds / 2,
        )
        self.reconciler = Reconciler(
            main.o, main.cache, main.config, main.live, main.timers, journals, log
        )
        self.reconciler.takeover = True
        self.reconciler.replica = replica
        self.reconciler._first_observation = False  # the loop's run saves them
        # One set: what either run applied the config to.
        self.reconciler._applied = main._applied
        self.reconciler.plan_lock = main.plan_lock
        self.reconciler.report_lock = main.report_lock
        self.task: asyncio.Task[None] | None = None
        self._opened = False
        self.stopping = False

    def waiting(self) -> frozenset[str]:
        """Elements held and writable that no run of ours writes to."""
        return frozenset(self.replica.writable()) - self.replica.busy

    def poke(self) -> None:
        """Elements were claimed while the loop's run goes on: a run for them now."""
        if self.stopping or (self.task is not None and not self.task.done()):
            return
        if self.main.config.desired is None or not self.waiting():
            return
        self.task = asyncio.get_running_loop().create_task(self._runs(), name="takeover")

    async def _runs(self) -> None:
        behind = False
        try:
            # Claims made during a takeover run get the next one.
            while not self.stopping:
                elements = self.waiting()
                desired = self.main.config.desired
                if not elements or desired is None:
                    return
                await self._one(elements)
                if self.main.config.desired is not desired:
                    # A new config came while this applied an older one: a
                    # loop's run applies it to these elements too.
                    for e in elements:
                        self.main._applied.pop(e, None)
                    behind = True
                if not self.running():
                    return  # the loop's next run takes what was claimed since
        finally:
            if behind and not self.stopping:
                # The loop's run for that config may have ended already (it
                # left these elements to us, busy): without this nothing
                # would run for them until the next commit (a fetch that
                # finds none starts no run).
                self.rerun("takeover")

    async def _one(self, elements: frozenset[str]) -> None:
        self.log.info("takeover_run", replica=self.replica.id, elements=sorted(elements))
        try:
            if not self._opened:
                await asyncio.to_thread(self.reconciler.journals.open)
                self._opened = True
            _, outcome = await self.reconciler.reconcile(True, {"takeover"}, only=elements)
            self.log.info("takeover_run_done", elements=sorted(elements), outcome=outcome)
        except database_errors() as e:
            # Cut off from the journal: the loop's next run (once it answers) takes them.
            self.log.warning("run_failed", error=f"journal unreachable: {type(e).__name__}")
        except Exception as e:  # a bug in one run must not end the reconciler
            self.log.error("run_crashed", error=f"{type(e).__name__}: {e}")
        finally:
            self.reconciler.gate = None

    def close_gate(self) -> None:
        """SIGTERM: the takeover run sends nothing more."""
        self.stopping = True
        if self.reconciler.gate is not None:
            self.reconciler.gate.close()

    async def drained(self) -> None:
        gate = self.reconciler.gate
        if gate is not None:
            await gate.drained()

    async def close(self) -> None:
        self.stopping = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, *database_errors()):
                await self.task
        if self._opened:
            self.reconciler.journals.close()
