"""The retry back-off of the watcher's timers: pure bookkeeping, no clock."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from provgit.watch.logs import Log
from provgit.watch.options import WatchOptions
from provgit.watch.timers import Timers


def _timers(tmp_path: Path, resync: float = 8.0) -> Timers:
    options = WatchOptions(
        config=tmp_path, state_dir=tmp_path, retry_check_seconds=1.0, resync_seconds=resync
    )
    return Timers(options, lambda _: None, asyncio.Event())


def test_retries_that_move_nothing_back_off_up_to_the_resync_interval(tmp_path: Path) -> None:
    t = _timers(tmp_path)
    floors = []
    for _ in range(6):
        t.after_retry(3)  # still 3 pending updates (or elements down) after each retry
        floors.append(t.retry_floor)
    assert floors == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_retry_that_moves_something_resets_the_back_off(tmp_path: Path) -> None:
    t = _timers(tmp_path)
    for pending in (3, 3, 3):
        t.after_retry(pending)
    assert t.retry_floor == 4.0
    t.after_retry(2)
    assert t.retry_floor == 1.0
    t.after_retry(0)  # nothing left: never a back-off
    t.after_retry(0)
    assert t.retry_floor == 1.0


def test_the_back_off_is_at_least_a_second_without_resyncs(tmp_path: Path) -> None:
    t = _timers(tmp_path, resync=0)
    for _ in range(3):
        t.after_retry(1)
    assert t.retry_floor == 1.0


class _ClockThatFailsOnce:
    """A clock whose first read raises (a clock file caught half-written, say)."""

    def __init__(self) -> None:
        self.reads = 0

    def now(self) -> float:
        self.reads += 1
        if self.reads == 1:
            raise ValueError("could not convert string to float: ''")
        return 2_000_000_000.0


def test_a_tick_that_raises_is_reported_and_the_timers_go_on(tmp_path: Path) -> None:
    """Before, the first exception ended the task for good: held work was never
    released, retries never asked, while the status said "pending" for ever."""

    async def scenario() -> tuple[list[str], list[dict[str, str]]]:
        asked: list[str] = []
        logged = io.StringIO()
        stop = asyncio.Event()
        released = asyncio.Event()

        def trigger(reason: str) -> None:
            asked.append(reason)
            if reason == "release":
                released.set()

        options = WatchOptions(
            config=tmp_path,
            state_dir=tmp_path,
            retry_check_seconds=0.01,
            resync_seconds=0,
            clock=_ClockThatFailsOnce(),
        )
        timers = Timers(options, trigger, stop, Log("json", logged))
        timers.release_at = 0.0  # held work may go out now
        task = asyncio.create_task(timers.pending(lambda: False, lambda now: False))
        try:
            await asyncio.wait_for(released.wait(), 30)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        return asked, [json.loads(line) for line in logged.getvalue().splitlines()]

    asked, lines = asyncio.run(scenario())
    assert [(e["level"], e["event"], e["error"]) for e in lines] == [
        ("error", "timer_failed", "ValueError: could not convert string to float: ''")
    ]
    assert asked == ["release"]


class _Clocks:
    """`time` as timers.py reads it: a wall clock that an NTP step moves, and
    a monotonic one that only goes on."""

    def __init__(self, wall: float) -> None:
        self.wall = wall
        self.mono = 1000.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


def test_a_wall_clock_stepped_back_does_not_stop_the_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica whose clock ran two hours ahead asked for a retry, then NTP put
    its clock right. Before, the floor between retries was kept on the wall
    clock: no retry was asked for two hours (test_replica_retry_clock failed,
    the replica's pending delete never retried)."""
    clocks = _Clocks(wall=2_000_000_000.0 + 2 * 3600)
    monkeypatch.setattr("provgit.watch.timers.time", clocks)
    asked: list[str] = []
    options = WatchOptions(
        config=tmp_path, state_dir=tmp_path, retry_check_seconds=1.0, resync_seconds=0
    )
    timers = Timers(options, asked.append, asyncio.Event())

    async def tick() -> None:
        await timers._tick(lambda: False, lambda now: True)

    asyncio.run(tick())
    assert asked == ["retry"]
    clocks.wall -= 2 * 3600  # the step back
    clocks.mono += 0.5
    asyncio.run(tick())
    assert asked == ["retry"]  # the floor (1 s) is not over yet
    clocks.mono += 1.0
    asyncio.run(tick())
    assert asked == ["retry", "retry"]
