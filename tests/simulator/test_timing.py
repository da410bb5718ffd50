"""Where a request's time goes: the simulator's Server-Timing and the driver's stats."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest

from provgit.drivers.base import WriteOp
from provgit.drivers.http import RequestStats, _server_total

from .conftest import Simulator
from .test_faults import http


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("work;dur=1.5, total;dur=20.25", 0.02025),
        ('total;desc="held";dur=3', 0.003),
        ("total;dur=0", 0.0),
        ("work;dur=1.5", None),
        ("total", None),
        ("total;dur=abc", None),
        ('total;dur="12.5"', 0.0125),
        ("total;dur=nan", None),
        ("total;dur=-3", None),
        ("total;dur=inf", None),
        ("", None),
        (None, None),
    ],
)
def test_server_timing_total_is_read_in_seconds(header: str | None, seconds: float | None) -> None:
    assert _server_total(header) == (pytest.approx(seconds) if seconds is not None else None)


def test_stats_count_only_timed_answers_as_element_time() -> None:
    stats = RequestStats()
    stats.add(0.03, "total;dur=20")
    stats.add(0.01, None)
    assert stats.requests == 2 and stats.timed_requests == 1
    assert stats.round_trip_seconds == pytest.approx(0.04)
    assert stats.element_seconds == pytest.approx(0.02)


@pytest.mark.slow
def test_simulator_reports_the_time_it_held_each_request(simulator: Simulator) -> None:
    simulator.admin("/admin/faults", {"latency_ms": 30})
    request = urllib.request.Request(simulator.url + "/v1/element")
    request.add_header("Authorization", f"Bearer {simulator.token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        header = response.headers["Server-Timing"]
    metrics = dict(m.strip().split(";dur=") for m in header.split(","))
    work, total = float(metrics["work"]), float(metrics["total"])
    # Held for the latency asked (the simulator aims early by what it learnt
    # of its own timer lateness, at most 5 ms), work included.
    assert 0 <= work <= total
    assert total >= 30 - 5


@pytest.mark.slow
def test_driver_stats_split_round_trip_and_element_time(simulator: Simulator) -> None:
    simulator.admin("/admin/faults", {"latency_ms": 10})

    async def main() -> RequestStats:
        driver = http(simulator.url)
        try:
            await driver.info()
            await driver.write_batch([WriteOp("put", "cos", "1", {"number": 1, "comment": "x"})])
            return driver.stats
        finally:
            await driver.close()

    stats = asyncio.run(main())
    assert stats.requests == 2 and stats.timed_requests == 2
    # The element's own time is part of every round trip, never more.
    assert 0 < stats.element_seconds <= stats.round_trip_seconds
