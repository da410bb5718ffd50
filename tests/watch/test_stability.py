"""How long a settled read waits: the settle interval, less the time the
newest file has already kept still (its confirming read happens regardless)."""

from __future__ import annotations

import pytest

from provgit.watch.stability import Snapshot, _still_to_wait

NOW = 1_780_000_000.0  # a fixed "now": the wait depends on nothing else


def _snap(*mtimes: float) -> Snapshot:
    return Snapshot("k", tuple((f"f{i}.yaml", "id", 1, int(m * 1e9)) for i, m in enumerate(mtimes)))


def test_a_file_still_for_longer_than_the_interval_needs_no_more_waiting() -> None:
    assert _still_to_wait(_snap(NOW - 10), 0.3, now=NOW) == 0.0


def test_the_newest_file_sets_the_wait() -> None:
    assert _still_to_wait(_snap(NOW - 10, NOW - 0.1), 0.3, now=NOW) == pytest.approx(0.2, abs=1e-6)
    assert _still_to_wait(_snap(NOW - 10, NOW), 0.3, now=NOW) == pytest.approx(0.3, abs=1e-6)


def test_a_modification_time_in_the_future_waits_the_whole_interval() -> None:
    assert _still_to_wait(_snap(NOW + 60), 0.3, now=NOW) == pytest.approx(0.3, abs=1e-6)


def test_no_files_waits_nothing_more() -> None:
    assert _still_to_wait(Snapshot("k", ()), 0.3, now=NOW) == 0.0
