"""The retry back-off of the watcher's timers: pure bookkeeping, no clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

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
