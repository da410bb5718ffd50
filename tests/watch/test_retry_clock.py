"""Due-ness of pending updates whatever clock stamped them (watch/retry_clock.py,
issue #19): a `next_retry` further than `retry_max_seconds` past now is due
now, said once in the log until no row is ahead any more. The end-to-end
case (two replicas on PostgreSQL, one clock two hours ahead) is
test_replica_retry_clock.py."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from provgit.watch.logs import Log
from provgit.watch.retry_clock import CLOCK_SLACK_SECONDS, RetryClock

NOW = 1_800_000_000.0
MOST = 30.0


@dataclass(frozen=True)
class Row:
    element: str
    key: str
    next_retry: float


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_rows_within_the_retry_schedule_wait_their_time_and_a_row_hours_ahead_is_due_now() -> None:
    out = io.StringIO()
    clock = RetryClock(Log("json", stream=out))
    waiting = [Row("cs1", "u1", NOW + MOST), Row("cs2", "u2", NOW + MOST + CLOCK_SLACK_SECONDS)]
    assert clock.due(waiting, NOW, MOST) is False
    assert clock.due([Row("cs1", "u1", NOW - 1)], NOW, MOST) is True
    assert _lines(out) == []

    ahead = [*waiting, Row("cs3", "u3", NOW + 7200)]
    assert clock.due(ahead, NOW, MOST) is True
    assert clock.due(ahead, NOW + 1, MOST) is True
    said = _lines(out)
    assert [(x["event"], x["level"], x["element"], x["key"]) for x in said] == [
        ("retry_time_ahead", "warning", "cs3", "u3")
    ], said
    assert said[0]["ahead_seconds"] == 7200 - MOST

    # None ahead any more, then one again: said again.
    assert clock.due(waiting, NOW, MOST) is False
    assert clock.due(ahead, NOW, MOST) is True
    assert len(_lines(out)) == 2
