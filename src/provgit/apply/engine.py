"""Execute a Plan: elements in parallel, operations in plan order, durably.

How a run goes:
  1. Queue cap: more operations than `apply.queue_cap` refuses the run (nothing
     is dropped, nothing applied).
  2. For every element with work: take its file lock (another applier: refused,
     naming it), then, for a saved plan, compare the element's revision with
     the one the plan saw (moved: refused, "changed by another user; run plan
     again"). Any refusal stops the whole run unless `partial`.
  3. Workers, at most `element_concurrency` elements at once. On one element
     the plan's order is cut into waves (apply/waves.py). A wave goes out as
     batches (several in flight); the next wave waits for it. The deletes of
     records moving to another element wait for the whole run's creates and
     go out only where the create landed and was kept (apply/moves.py).
  4. Per batch: intents are committed (fsync) first, then `write_batch`, then
     outcomes (apply/ledger.py). After a SIGKILL an intent without an outcome
     is a write of unknown fate; the next run closes it once the element has
     been observed again (the plan it applies was computed from what the
     element holds), so nothing is lost or done twice, and creates are
     conditional ("only if absent"; an existing identical record counts as
     success).
  5. Element-wide transport trouble (offline, locked, unreachable) is retried
     with exponential backoff and jitter (apply/transport.py), then the
     element's remaining work is kept as pending updates; a refused token
     is not retried, its writes wait the same way. The element then shows
     that state (Stopped, Offline, Token refused), also when some of its
     writes landed before (apply/outcomes.py). Per-record refusals
     and conflicts become distribution errors (apply/outcomes.py); whatever
     depends on them (transitively) is skipped. An element that could not
     even be observed gets its queued writes (the plan's, against what it
     last held) as pending updates at once, as SDS queues updates for an
     element that is down.
  6. Status per element and resource, alarms and events go to the journal;
     an element going down or coming back is an event, once per change.

A run that dies without finishing (SIGKILL, power loss) is marked
`interrupted` by the next one; a run cancelled (SIGTERM) marks itself so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provgit.apply import drift_detect as drift
from provgit.apply import holds, moves, swaps
from provgit.apply import outcomes as oc
from provgit.apply import status as st
from provgit.apply.admission import review
from provgit.apply.delivery import Decisions, Delivery
from provgit.apply.finish import finish_run, now_iso
from provgit.apply.held_safety import admitted, applied_safety, remember_safety
from provgit.apply.ledger import Ledger, Ref
from provgit.apply.locks import ElementLock, LockHeld
from provgit.apply.options import ApplyOptions
from provgit.apply.progress import NoProgress, Progress
from provgit.apply.resources import ResourceTally
from provgit.apply.result import ApplyResult
from provgit.apply.standing import settle_dead_runs, settle_removed_elements
from provgit.apply.transport import Transport, WriteHook, installed_write_hook
from provgit.apply.waves import waves
from provgit.apply.work import ElementWork, chosen, initial
from provgit.drivers.base import Driver, ElementError
from provgit.journal import Journal
from provgit.model.settings import Settings
from provgit.plan.held import AppliedSafety, hold
from provgit.plan.model import Plan

__all__ = ["Applier", "ApplyOptions", "WriteHook", "apply_plan"]

DEFAULT_OPTIONS = ApplyOptions()

# Kept for the benchmarks and tests that cut waves as the engine does.
_waves = waves


class Applier:
    """One apply run: admission, then each element's waves, then the run's end."""

    def __init__(
        self,
        plan: Plan,
        drivers: Mapping[str, Driver],
        journal: Journal,
        settings: Settings,
        state_dir: Path,
        options: ApplyOptions,
        progress: Progress,
        unavailable: Mapping[str, str],
        write_hook: WriteHook | None = None,
    ) -> None:
        self.plan = plan
        self.drivers = drivers
        self.journal = journal
        self.settings = settings
        self.state_dir = state_dir
        self.options = options
        self.progress = progress
        self.unavailable = unavailable
        self.locks: list[ElementLock] = []
        self.ledger = Ledger(journal, settings)
        self.transport = Transport(
            settings, write_hook if write_hook is not None else installed_write_hook()
        )
        self.tally = ResourceTally()
        self.drift = drift.Review()
        self.drift_held: dict[tuple[str, str, str], Any] = {}
        # Per element, the safety its last admitted run applied (plan/held.py).
        self.applied: dict[str, AppliedSafety] = {}

    # ---- the run ---------------------------------------------------------------

    async def run(self) -> ApplyResult:
        cancelled = False
        try:
            result = await self._run()
            # Housekeeping, after the run's own commits and off the event loop;
            # a journal busy with another process just prunes next time.
            with contextlib.suppress(sqlite3.Error):
                days = self.settings.apply.journal_retention_days
                await self.ledger.call(self.journal.prune, days * 86400)
            return result
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            for lock in self.locks:
                lock.release()
            self.ledger.shutdown()
            # After the journal thread is done: one user of the connection at a
            # time. The watcher says itself how its runs end (it drained them).
            if cancelled and self.ledger.run_id and self.options.command != "watch":
                self.ledger.interrupted(self.options.command)

    async def _run(self) -> ApplyResult:
        only = self.options.only
        result = await self._start()
        if self.plan.mode == "plan":
            # The stricter of the last applied safety and the config's, whoever planned.
            self.applied = await self.ledger.call(applied_safety, self.journal)
            self.plan = hold(self.plan, self.applied, self.settings.safety, note=False)
        work = [
            ElementWork(
                ep, self.drivers.get(ep.element), chosen(only, ep, ep.operations), initial(ep)
            )
            for ep in self.plan.elements
        ]
        await self._review_drift()
        suspensions = await self.ledger.call(self.journal.suspensions)
        now = self.options.clock.now()
        if self._over_cap(result, work):
            return self._finish(result, work)
        refused = await self._admit(work)
        if refused and not self.options.partial:
            self._refuse(result, work, refused)
            return self._finish(result, work)
        runnable = [w for w in work if w.result.outcome != "refused"]
        decisions = Decisions(
            # Whole or nothing: the secrets each resource needs, on all its
            # elements, resolve before the first write of the run (apply/admission.py).
            admission=review(
                [(w.plan.element, w.ops) for w in runnable],
                [w.plan.element for w in runnable if w.driver is not None and w.plan.observed],
            ),
            holds=holds.Holds(
                self.settings,
                suspensions,
                now,
                override=self.options.override_window is not None,
            ),
            drift_held=self.drift_held,
            drift_found=self.drift,
        )
        if only is not None:
            result.settled = await self._settle_unplanned(runnable)
        for w in runnable:
            ops = w.ops if w.plan.observed else chosen(only, w.plan, w.plan.queued)
            self.tally.target(w.plan.element, ((op.kind, op.resource) for op in ops))
        if self.tally.targets:
            await self.ledger.call(
                self.journal.set_resource_statuses,
                self.tally.starting_rows(),
                self.ledger.run_id,
                False,
            )
        await self._deliver(runnable, decisions)
        return self._finish(result, work)

    async def _deliver(self, runnable: list[ElementWork], decisions: Decisions) -> None:
        delivery = Delivery(
            self.ledger,
            self.transport,
            self.settings,
            self.options,
            self.progress,
            self.tally,
            self.unavailable,
            decisions,
        )
        gate = asyncio.Semaphore(self.settings.apply.element_concurrency)

        async def one(w: ElementWork) -> None:
            async with gate:
                await delivery.element(w)
                await swaps.finish_swaps(delivery, w)
                if not w.later:
                    await delivery.close(w)

        # Every element is seen through before a failure is raised: no write may
        # still be going out once the locks are released.
        ends = await asyncio.gather(*(one(w) for w in runnable), return_exceptions=True)
        # Then the deletes of moves (apply/moves.py): once every element's
        # creates are done and checked; an element that failed confirms none.
        done = {w.plan.element: w for w, end in zip(runnable, ends, strict=True) if end is None}
        # Moves to elements this run does not cover: the journal says (a
        # replica's run covers the elements it holds; another creates there).
        planned = {ep.element for ep in self.plan.elements}
        elsewhere = await moves.kept_elsewhere(self.ledger, done.values(), planned)
        # Each new home is read before the old one lets go (apply/moves.py).
        confirmed = await moves.created(done, elsewhere, self.drivers)

        async def old_home(w: ElementWork) -> None:
            async with gate:
                await moves.finish_moves(delivery, w, confirmed, planned)
                await delivery.close(w)

        later = [w for w in done.values() if w.later]
        ends += await asyncio.gather(*(old_home(w) for w in later), return_exceptions=True)
        for end in ends:
            if isinstance(end, BaseException):
                raise end

    def _finish(self, result: ApplyResult, work: list[ElementWork]) -> ApplyResult:
        outcomes = {w.plan.element: w.outcomes for w in work}
        result.drift = oc.drift_report(self.drift, self.drift_held, outcomes)

        def remember() -> None:
            if self.plan.mode == "plan":
                elements = admitted(result, work)
                safety, commit = self.settings.safety, self.plan.commit
                remember_safety(
                    self.journal, elements, safety, self.applied, commit, self.ledger.run_id
                )

        return finish_run(
            self.ledger, result, work, self.tally, self.options, self.settings, remember
        )

    async def _start(self) -> ApplyResult:
        """Open the run in the journal, settle what dead runs and removed elements left."""
        plan, journal, ledger = self.plan, self.journal, self.ledger
        host = os.uname().nodename
        ledger.run_id = journal.start_run(
            self.options.command, os.getpid(), host, self.options.plan_checksum, plan.commit
        )
        await ledger.call(settle_dead_runs, journal, host, ledger.run_id)
        if self.options.only is None and plan.mode == "plan":
            # A plan of the whole config names every element it has (the
            # drivers too: an element is never dropped for want of one).
            configured = {ep.element for ep in plan.elements} | set(self.drivers)
            await ledger.call(settle_removed_elements, journal, configured, ledger.run_id)
        ledger.before = await ledger.call(journal.element_statuses)
        left_out = list(self.options.left_out)
        return ApplyResult(ledger.run_id, plan.network, started=now_iso(), left_out=left_out)

    async def _review_drift(self) -> None:
        """Drift is looked for before anything can refuse the run: it is found
        (and recorded) whatever happens next."""
        mode = drift.mode_for(self.settings, self.options.drift)
        self.drift = await self.ledger.call(
            drift.review,
            self.plan,
            self.journal,
            mode,
            # A plan observed in this run (not a saved one) shows which
            # records equal the config again.
            settle=self.options.fresh or not self.options.check_stale,
            run_id=self.ledger.run_id,
            missed=self.options.feed_missed,
        )
        if mode == "report" and not self.options.overwrite_drift:
            # A rejected proposal's drift is not held: the config wins.
            self.drift_held = {r: d for r, d in self.drift.found.items() if d.state != "rejected"}

    def _over_cap(self, result: ApplyResult, work: list[ElementWork]) -> bool:
        total = sum(len(w.ops) for w in work)
        cap = self.settings.apply.queue_cap
        if total <= cap:
            return False
        result.refusal = (
            f"queue cap: {total} operations queued, more than apply.queue_cap ({cap}); "
            "nothing was applied or dropped. Apply in parts (--element) or raise "
            "apply.queue_cap in provgit.yaml"
        )
        for w in work:
            if w.ops and w.plan.observed:
                # Not "Sync Completed": its changes were not applied.
                w.result.status, w.result.outcome = st.refused("queue cap"), "refused"
        return True

    def _refuse(
        self, result: ApplyResult, work: list[ElementWork], refused: list[ElementWork]
    ) -> None:
        names = ", ".join(w.plan.element for w in refused)
        result.refusal = f"refused for {names}; nothing was applied" + (
            " (pass --partial to apply the other elements)"
            if len(refused) < len([w for w in work if w.ops])
            else ""
        )
        for w in work:
            if w not in refused and w.ops and w.plan.observed:
                w.result.outcome = "refused"
                w.result.status = st.refused("run refused, not applied")

    async def _settle_unplanned(self, work: list[ElementWork]) -> list[tuple[str, str, str]]:
        """Chosen records (`only`) that the plan has nothing to do for, on an element
        it observed, are in sync already: their distribution errors are over."""
        assert self.options.only is not None
        settled: list[tuple[str, str, str]] = []
        for w in work:
            if not w.plan.observed:
                continue
            name = w.plan.element
            planned = {(op.collection, op.key) for op in w.plan.operations}
            settled += sorted(
                (e, c, k) for e, c, k in self.options.only if e == name and (c, k) not in planned
            )
        by_element: dict[str, list[Ref]] = {}
        for e, c, k in settled:
            by_element.setdefault(e, []).append((c, k))
        if settled:
            await self.ledger.clear_settled(by_element)
        return settled

    async def _admit(self, work: list[ElementWork]) -> list[ElementWork]:
        """Locks, plan refusals and staleness; returns the refused elements."""
        reasons: dict[str, str] = {}
        stale_checks: list[ElementWork] = []
        for w in work:
            if not w.ops:
                continue
            if w.plan.refusal is not None:
                reasons[w.plan.element] = w.plan.refusal
                continue
            lock = ElementLock(self.state_dir, w.plan.element)
            try:
                lock.acquire(self.options.command)
                self.locks.append(lock)
            except LockHeld as e:
                reasons[w.plan.element] = str(e)
                continue
            if self.options.check_stale and w.driver is not None:
                stale_checks.append(w)
        # One round trip for all elements, not one after the other.
        moved = await asyncio.gather(*(self._moved(w) for w in stale_checks))
        for w, reason in zip(stale_checks, moved, strict=True):
            if reason is not None:
                reasons[w.plan.element] = reason
        refused: list[ElementWork] = []
        for w in work:
            reason = reasons.get(w.plan.element)
            if reason is not None:
                w.result.outcome = "refused"
                w.result.refusal = reason
                w.result.status = st.refused("not applied")
                refused.append(w)
        return refused

    async def _moved(self, w: ElementWork) -> str | None:
        """Why a saved plan is stale for `w`, or None if its element has not moved."""
        assert w.driver is not None
        if getattr(w.driver, "revision_is_clock", False):
            # No revision of the whole element to compare (a directory's is the
            # time of the read): every write there is conditional on its own
            # record's revision instead, so a record changed since is a conflict.
            return None
        try:
            info = await w.driver.info()
        except ElementError:
            return None  # unreachable: its work becomes pending later
        if info.revision == w.plan.observed_revision:
            return None
        return (
            f"element {w.plan.element} changed by another user; run plan again "
            f"(plan saw revision {w.plan.observed_revision}, now {info.revision})"
        )


async def apply_plan(
    plan: Plan,
    drivers: Mapping[str, Driver],
    journal: Journal,
    settings: Settings,
    state_dir: Path,
    options: ApplyOptions = DEFAULT_OPTIONS,
    progress: Progress | None = None,
    unavailable: Mapping[str, str] | None = None,
    write_hook: WriteHook | None = None,
) -> ApplyResult:
    """Apply `plan` through `drivers`, journaling everything. Never raises for an
    element's failure: it is in the result.

    `write_hook`: called around every element write call (see
    apply/transport.py); None: the one installed with `install_write_hook`, if any.
    """
    applier = Applier(
        plan,
        drivers,
        journal,
        settings,
        state_dir,
        options,
        progress or NoProgress(),
        unavailable or {},
        write_hook,
    )
    return await applier.run()
