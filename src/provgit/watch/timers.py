"""The watcher's clocks: resync and fetch ticks, retries of pending updates
(backing off while they move nothing), sync windows opening or closing, the
read that confirms held removals, and the full garbage collection once idle.

Timers only ask for a run (`trigger(reason)`); the loop's single flight
decides when it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable

from provgit.watch.options import WatchOptions
from provgit.watch.triggers import every

# A full garbage collection waits until no run was asked for this long.
DEEP_GC_IDLE_SECONDS = 30.0
# The confirming read of held removals starts this long after the grace ends.
CONFIRM_MARGIN_SECONDS = 0.05

Trigger = Callable[[str], None]


class Timers:
    def __init__(self, options: WatchOptions, trigger: Trigger, stop: asyncio.Event) -> None:
        self.o = options
        self.trigger = trigger
        self.stop = stop
        # Pending updates: how often a retry may be asked (backs off, see after_retry).
        self.retry_floor = options.retry_check_seconds
        self._retry_not_before = 0.0
        self._pending_before: int | None = None
        # When a sync window next opens or closes (clock time): a run is due then.
        self.window_change: float | None = None
        self._confirm: asyncio.TimerHandle | None = None
        self._deep_gc_due = False

    def start(self, git: bool) -> list[asyncio.Task[None]]:
        """The resync tick, and in git mode the fetch tick."""
        tasks = [
            asyncio.create_task(
                every(self.o.resync_seconds, lambda: self.trigger("resync"), self.stop)
            )
        ]
        if git:
            tasks.append(
                asyncio.create_task(
                    every(self.o.fetch_seconds, lambda: self.trigger("fetch"), self.stop)
                )
            )
        return tasks

    # ---- pending updates and sync windows -------------------------------------------

    async def pending(
        self, running: Callable[[], bool], retry_due: Callable[[float], bool]
    ) -> None:
        """Ask for a retry run when a pending update's next retry time has come
        (`retry_due(now)`), and for a run when a sync window opened or closed."""
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.o.retry_check_seconds)
                return
            at = self.window_change
            if at is not None and not running() and self.o.clock.now() >= at:
                # A sync window opened or closed: held work may go out now.
                self.window_change = None
                self.trigger("window")
            now = time.time()
            if now < self._retry_not_before or running():
                continue
            if retry_due(now):
                self.trigger("retry")
                self._retry_not_before = now + self.retry_floor

    def after_retry(self, pending_now: int) -> None:
        """Back off while retries do not move anything (an element still down).
        `pending_now`: pending updates and elements down after the retry."""
        before = self._pending_before
        if before is not None and pending_now >= before and pending_now:
            self.retry_floor = min(self.retry_floor * 2, max(self.o.resync_seconds, 1.0))
        else:
            self.retry_floor = self.o.retry_check_seconds
        self._pending_before = pending_now

    # ---- held removals ----------------------------------------------------------------

    def confirm_in(self, seconds: float) -> None:
        """Ask for the read that confirms held removals `seconds` from now
        (a little later, so the read starts after the grace)."""
        self.cancel_confirm()
        self._confirm = asyncio.get_running_loop().call_later(
            seconds + CONFIRM_MARGIN_SECONDS, self.trigger, "confirm"
        )

    def cancel_confirm(self) -> None:
        if self._confirm is not None:
            self._confirm.cancel()
            self._confirm = None

    # ---- garbage collection --------------------------------------------------------

    async def idle_until(self, wake: asyncio.Event) -> None:
        """Wait for `wake`; a full collection runs meanwhile once idle long enough."""
        while True:
            try:
                await asyncio.wait_for(wake.wait(), DEEP_GC_IDLE_SECONDS)
                return
            except TimeoutError:
                if self._deep_gc_due:
                    # Idle: now a full collection costs no one any latency.
                    gc.unfreeze()
                    gc.collect()
                    gc.freeze()
                    self._deep_gc_due = False

    def after_run(self) -> None:
        # Runs go with the cyclic GC off (cli/__init__.py); a process that
        # lives for weeks collects between runs instead, but not right
        # after one: walking 100,000 users' models takes seconds, and the
        # next change may already be waiting. What the run built is frozen
        # (out of every collection's way) and a full collection runs once
        # the watcher has been idle for a while.
        gc.freeze()
        self._deep_gc_due = True
