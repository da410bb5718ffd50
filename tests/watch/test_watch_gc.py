"""The watcher's collections between runs (timers.py): with the cyclic GC off,
what a run leaves as cyclic garbage must still be freed, also in a watcher
that is never idle (a commit every few seconds). The memory curve itself is
benchmarks/bench_soak.py; here, that the garbage of one run is gone."""

from __future__ import annotations

import asyncio
import gc
import platform
import sys
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from provgit.watch import timers as timers_module
from provgit.watch.options import WatchOptions
from provgit.watch.timers import (
    DEEP_GC_BUSY_SECONDS,
    FROZEN_GROWTH,
    Timers,
    limit_malloc_arenas,
    release_freed_memory,
)


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic GC frees it


@pytest.fixture
def gc_as_the_cli_leaves_it() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was:
            gc.enable()


@pytest.fixture
def counted_at_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The frozen objects counted at every run, however big this pytest
    worker's heap has grown: a count slower than COUNT_SLOW_SECONDS is skipped
    for a while (the slow-count test's subject), and in a worker that has run
    hundreds of tests the first count was (CI of 2026-12-07, twice)."""
    monkeypatch.setattr(timers_module, "COUNT_SLOW_SECONDS", float("inf"))


def _timers(tmp_path: Path) -> Timers:
    return Timers(
        WatchOptions(config=tmp_path, state_dir=tmp_path), lambda _: None, asyncio.Event()
    )


def _cycle() -> weakref.ref[_Node]:
    return weakref.ref(_Node())


def test_cyclic_garbage_of_a_run_is_freed_after_it_not_frozen(
    tmp_path: Path, gc_as_the_cli_leaves_it: None
) -> None:
    timers = _timers(tmp_path)
    garbage = _cycle()
    assert garbage() is not None  # the GC is off: nothing freed it yet
    timers.after_run()
    assert garbage() is None


def test_frozen_garbage_is_freed_by_a_full_collection_in_a_watcher_never_idle(
    tmp_path: Path, gc_as_the_cli_leaves_it: None
) -> None:
    timers = _timers(tmp_path)
    kept = _Node()
    survivor = weakref.ref(kept)
    gc.freeze()  # a big run's survivors, frozen
    del kept  # a later run replaced them: garbage, but frozen
    timers.after_run()
    assert survivor() is not None  # a run's collection does not walk frozen objects
    timers._deep_gc_at = time.monotonic() - DEEP_GC_BUSY_SECONDS - 1
    timers.after_run()
    assert survivor() is None


def test_garbage_frozen_by_runs_stays_within_a_share_of_the_frozen_objects(
    tmp_path: Path, gc_as_the_cli_leaves_it: None, counted_at_every_run: None
) -> None:
    # Each run freezes what validation built (load/loader.py gc_frozen), and
    # the run's garbage with it; commits come faster than DEEP_GC_BUSY_SECONDS.
    timers = _timers(tmp_path)
    gc.freeze()
    timers.after_run()  # the first run
    base = gc.get_freeze_count()
    per_run = 1_000
    first: list[weakref.ref[_Node]] = []
    most = 0
    for _ in range(int(4 * FROZEN_GROWTH * base / per_run) + 10):  # 4x what the bound allows
        garbage = [_cycle() for _ in range(per_run // 2)]  # a _Node and its dict each
        first = first or garbage
        gc.freeze()
        timers.after_run()
        most = max(most, gc.get_freeze_count())
    assert most <= base * (1 + FROZEN_GROWTH) + 2 * per_run
    assert all(g() is None for g in first)


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"),
    reason="malloc_trim is glibc's",
)
def test_freed_heap_pages_are_handed_back_after_every_run_on_glibc(
    tmp_path: Path, gc_as_the_cli_leaves_it: None
) -> None:
    # The call itself is found and made; what it returns to the system is
    # the soak benchmark's curve (benchmarks/README-watch.md), not a test's.
    assert release_freed_memory()
    _timers(tmp_path).after_run()


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"),
    reason="arenas are glibc's",
)
def test_malloc_arenas_are_limited_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the limit saves is the soak benchmark's curve, not a test's.
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas()  # glibc took the setting
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert not limit_malloc_arenas()  # the admin's, read by glibc at start, stands


def test_a_look_at_the_ref_that_started_no_run_walks_no_frozen_object(
    tmp_path: Path,
    gc_as_the_cli_leaves_it: None,
    counted_at_every_run: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A replica following a ref looks at it every fetch tick (0.2 s in the
    # replicas benchmark); the full collection's bookkeeping after each look
    # walked every frozen object (gc.get_freeze_count, gc.get_objects), seconds
    # on a 100,000-user heap at load ~25, on the event loop (loop10's py-spy).
    timers = _timers(tmp_path)
    gc.freeze()
    timers.after_run()  # a run
    walks: list[str] = []
    for name in ("get_freeze_count", "get_objects"):
        real = getattr(gc, name)
        monkeypatch.setattr(
            gc, name, lambda *a, _r=real, _n=name, **k: walks.append(_n) or _r(*a, **k)
        )
    for _ in range(50):
        timers.looked_only = True  # as Watcher._cycle marks a look that started no run
        timers.after_run()
    assert walks == []
    garbage = [_cycle() for _ in range(30_000)]  # looks add up: their young garbage goes
    timers.looked_only = True
    timers.after_run()
    assert all(g() is None for g in garbage)
    timers.after_run()  # a run again: the bookkeeping as before
    assert "get_freeze_count" in walks


def test_a_slow_count_of_the_frozen_objects_is_not_made_again_at_every_run(
    tmp_path: Path, gc_as_the_cli_leaves_it: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A replica holding no element yet ran a (no-op) run at every fetch tick;
    # each counted the frozen objects, seconds at 100,000 users at load ~40,
    # on the event loop (loop10's py-spy: 85 of 396 samples of one replica).

    clock = [1000.0]
    monkeypatch.setattr(timers_module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(timers_module.time, "thread_time", lambda: clock[0])
    timers = _timers(tmp_path)
    counts: list[int] = []
    real = gc.get_freeze_count

    def slow_count() -> int:
        counts.append(1)
        clock[0] += 2.0  # the walk took 2 s of CPU
        return real()

    monkeypatch.setattr(gc, "get_freeze_count", slow_count)
    timers.after_run()
    assert len(counts) == 1
    for _ in range(5):
        clock[0] += 3.0  # runs 3 s apart: within ten times the last count's 2 s
        timers.after_run()
    assert len(counts) == 1
    clock[0] += 10.0  # 20 s after the count began: counted again
    timers.after_run()
    assert len(counts) == 2
