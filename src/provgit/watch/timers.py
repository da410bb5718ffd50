"""The watcher's clocks: resync and fetch ticks, retries of pending updates
(backing off while they move nothing), the moment held work may go out (a
sync window opening or closing, a call-load `max_wait` running out), the
call-load reads of elements with deferred work, the read that confirms held
removals, and the full garbage collection once idle.

Held work is timed by the injected clock (`WatchOptions.clock`), so a test's
fake clock moving past a window's end or a `max_wait` wakes the watcher.

Timers only ask for a run (`trigger(reason)`); the loop's single flight
decides when it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from provgit.watch.logs import Log
from provgit.watch.options import WatchOptions
from provgit.watch.triggers import every

# A full garbage collection waits until no run was asked for this long,
DEEP_GC_IDLE_SECONDS = 30.0
# or, in a watcher never idle that long, runs after a run once this long passed
# since the last one (a few seconds at 100,000 users, once in ten minutes).
DEEP_GC_BUSY_SECONDS = 600.0
# Objects left by the runs since the last freeze beyond which they are frozen
# (a one-user change at 100,000 users leaves a few thousand).
FREEZE_AT_OBJECTS = 200_000
# Looks at the ref that started no run collect their young garbage past this
# many new objects (a look leaves a few hundred: the status server's requests).
LOOKS_COLLECT_AT = 20_000
# A count of the frozen objects that took more CPU is made again only after ten times that.
COUNT_SLOW_SECONDS = 0.05
# or once the frozen objects grew by this share since the last one. Each run
# freezes what validation built (load/loader.py `gc_frozen`), and with it
# whatever of the run was garbage or became garbage later: about 70 objects a
# commit at 200 users, 0.02 MB, never freed in a watcher committed to faster
# than DEEP_GC_BUSY_SECONDS (the #16 soak: +14 % RSS in 900 commits). As
# CPython's own rule for its oldest generation, a share of what a full
# collection walks: its cost stays in proportion to the growth it frees.
FROZEN_GROWTH = 0.10
# The confirming read of held removals starts this long after the grace ends.
CONFIRM_MARGIN_SECONDS = 0.05

Trigger = Callable[[str], None]


class Timers:
    def __init__(
        self,
        options: WatchOptions,
        trigger: Trigger,
        stop: asyncio.Event,
        log: Log | None = None,
    ) -> None:
        self.o = options
        self.trigger = trigger
        self.stop = stop
        self.log = log
        # Pending updates: how often a retry may be asked (backs off, see after_retry).
        self.retry_floor = options.retry_check_seconds
        self._retry_not_before = 0.0
        self._pending_before: int | None = None
        # When held work may next go out by the clock (a window edge, a
        # max_wait deadline; clock time): a run is due then.
        self.release_at: float | None = None
        # When to read the call load of elements with deferred work (clock time).
        self.load_poll_at: float | None = None
        # Reads it; set by the loop (asks for a run itself when the load fell).
        self.poll_load: Callable[[], Awaitable[None]] | None = None
        self._confirm: asyncio.TimerHandle | None = None
        self._deep_gc_due = False
        self.looked_only = False  # the cycle that ended only looked at the ref (loop.py)
        self._count_not_before = 0.0  # counting the frozen objects is slow: not before then
        self._deep_gc_at = time.monotonic()
        # Frozen objects after the last full collection (None: none yet) and
        # after the last run.
        self._frozen_base: int | None = None
        self._frozen_last = gc.get_freeze_count()
        limit_malloc_arenas()  # before the runs' worker threads allocate

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
        (`retry_due(now)`), for a run when held work may go out, and read the
        call load of elements with deferred work when that is due."""
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.o.retry_check_seconds)
                return
            try:
                await self._tick(running, retry_due)
            except Exception as e:
                # One bad tick (a clock, journal or element read that failed)
                # must not end this task: nothing else asks for the retries, the
                # release of held work or the load polls, so they would stop
                # for good while the status said "pending" for ever.
                if self.log is not None:
                    self.log.error("timer_failed", error=f"{type(e).__name__}: {e}")

    async def _tick(self, running: Callable[[], bool], retry_due: Callable[[float], bool]) -> None:
        if not running():
            await self._held(self.o.clock.now())
        # The floor between retries on the monotonic clock: on the wall clock,
        # a step back (NTP putting a clock right that ran ahead) stopped every
        # retry for as long as the step (hours), the pending updates with them.
        # `now` (wall) is only what the journal's next_retry times compare with.
        now, at = time.time(), time.monotonic()
        if at < self._retry_not_before or running():
            return
        if retry_due(now):
            self.trigger("retry")
            self._retry_not_before = at + self.retry_floor

    async def _held(self, now: float) -> None:
        at = self.release_at
        if at is not None and now >= at:
            # A window opened or closed, or a max_wait ran out.
            self.release_at = None
            self.trigger("release")
        poll = self.load_poll_at
        if poll is not None and now >= poll and self.poll_load is not None:
            self.load_poll_at = None
            await self.poll_load()

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
        """Wait for `wake`; collections run meanwhile once idle long enough."""
        while True:
            try:
                await asyncio.wait_for(wake.wait(), DEEP_GC_IDLE_SECONDS)
                return
            except TimeoutError:
                if self._deep_gc_due:
                    # Idle: now a full collection costs no one any latency.
                    self._deep_collect()
                else:
                    # No run for a while, but the status server kept answering:
                    # its requests' cycles (aiohttp) are garbage only a collection
                    # frees, and the cyclic GC is off. Only what is not frozen
                    # is walked: cheap.
                    gc.collect()

    def after_run(self) -> None:
        """Runs go with the cyclic GC off (cli/__init__.py); a process that
        lives for weeks collects between runs instead."""
        if self.looked_only:
            # Only a look at the ref (every fetch tick): no run left millions of
            # objects, and the full collection's bookkeeping below walks every
            # frozen object (seconds on a 100,000-user heap at load, on the
            # event loop, 5 times a second). What the looks leave is collected
            # once it adds up; the generations it walks are the young ones.
            self.looked_only = False
            if gc.get_count()[0] > LOOKS_COLLECT_AT:
                gc.collect(1)
            return
        if gc.get_count()[0] > FREEZE_AT_OBJECTS:
            # A big run (the first at 100,000 users, a change that reprojected
            # everything) left millions of objects: walking them takes seconds
            # that the next commit would wait for. Frozen unwalked, out of every
            # later collection's way; their garbage waits for the next full
            # collection (idle, or DEEP_GC_BUSY_SECONDS).
            gc.freeze()
        else:
            # What is not frozen: what runs left since the last freeze,
            # survivors and cyclic garbage. Collected, not frozen with the
            # survivors: a watcher applying a commit every few seconds never
            # had the 30 s of idleness its full collection waited for, and kept
            # every run's cycles (0.27 MB per commit in the #16 soak). Frozen
            # objects are not walked: this costs what those runs left alive.
            gc.collect()
            if len(gc.get_objects(generation=2)) > FREEZE_AT_OBJECTS:
                gc.freeze()  # survivors of many small runs: out of the way too
        self._deep_gc_due = True
        if self._deep_collect_due():
            # Frozen objects that became cyclic garbage are freed only by a
            # full collection; one now and then, even between two runs, keeps
            # them bounded.
            self._deep_collect()
        else:
            release_freed_memory()

    def _deep_collect_due(self) -> bool:
        """Busy for long, or the frozen objects grew by FROZEN_GROWTH since the
        last full collection (not counting a big run's: see after_run)."""
        started = time.monotonic()
        if started < self._count_not_before:
            return started - self._deep_gc_at > DEEP_GC_BUSY_SECONDS
        cpu = time.thread_time()
        frozen = gc.get_freeze_count()  # walks every frozen object, on the event loop
        took = time.thread_time() - cpu  # its CPU: what the load does not inflate
        if took > COUNT_SLOW_SECONDS:
            # Seconds on a 100,000-user heap at load (loop10's py-spy, a replica
            # running a run every fetch tick while it held no element): counted
            # at most a tenth of the time; the busy bound still holds meanwhile.
            self._count_not_before = started + 10 * took
        grew, self._frozen_last = frozen - self._frozen_last, frozen
        if self._frozen_base is None:
            self._frozen_base = frozen  # the first run: the measure
        elif grew > FREEZE_AT_OBJECTS:
            # A big run: what it froze moves the measure up (walking it now
            # would cost seconds the next commit waits for).
            self._frozen_base += grew
        elif frozen > self._frozen_base * (1 + FROZEN_GROWTH):
            return True
        return time.monotonic() - self._deep_gc_at > DEEP_GC_BUSY_SECONDS

    def _deep_collect(self) -> None:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        release_freed_memory()
        self._deep_gc_due = False
        self._deep_gc_at = time.monotonic()
        self._frozen_base = self._frozen_last = gc.get_freeze_count()


# glibc's malloc gives a thread that finds the arenas busy one of its own, up
# to 8 per core; what each keeps free stays out of the others' reach (the #16
# soak: 5 MB more held free in the heaps, growing as the thread pool grew). Two
# are enough for a watcher: its threads mostly wait on the GIL anyway.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h
_LIBC: list[Any] = []


def _glibc() -> Any:
    """glibc's malloc calls (ctypes), or None where they are not (musl, macOS)."""
    if not _LIBC:
        import ctypes  # only here: not every watcher start pays for it

        try:
            libc = ctypes.CDLL(None)
            _ = (libc.malloc_trim, libc.mallopt)  # both, or neither
            _LIBC.append(libc)
        except (AttributeError, OSError):
            _LIBC.append(None)
    return _LIBC[0]


def limit_malloc_arenas() -> bool:
    """At most MALLOC_ARENAS malloc arenas in this process from now on (arenas
    already made stay); False where there is no such setting, or MALLOC_ARENA_MAX
    in the environment said otherwise (glibc read it at start)."""
    libc = _glibc()
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS) == 1)


def release_freed_memory() -> bool:
    """Give the heap's free pages back to the system (glibc's malloc_trim);
    False where there is no such call.

    What a run frees stays in the C allocator's heaps (glibc keeps them for
    reuse, and a page with one live object in it cannot be returned), so a
    watcher's RSS crept up run after run with no Python object accumulating
    (the #16 soak: +11 % from 100 to 600 commits). About 3 ms at 100,000 users
    (a 750 MB heap), between runs."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
