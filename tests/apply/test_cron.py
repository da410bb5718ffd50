"""The sync windows' cron: matching, open-now and next-opening, in a time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from provgit.model.cron import Cron, CronError, active_start, next_start

PARIS = ZoneInfo("Europe/Paris")


def _utc(*a: int) -> float:
    return datetime(*a, tzinfo=UTC).timestamp()


def test_weekday_ranges_lists_and_steps_match_like_crontab() -> None:
    c = Cron.parse("*/15 8-17 * * 1-5")
    assert c.minutes == frozenset({0, 15, 30, 45})
    assert c.matches(datetime(2026, 6, 1, 8, 45, tzinfo=UTC))  # a Monday
    assert not c.matches(datetime(2026, 6, 6, 8, 45, tzinfo=UTC))  # a Saturday
    assert Cron.parse("0 0 * * 7").matches(datetime(2026, 6, 7, 0, 0, tzinfo=UTC))  # Sunday


def test_both_day_fields_restricted_match_either() -> None:
    c = Cron.parse("0 0 13 * 5")  # the 13th, or any Friday
    assert c.matches(datetime(2026, 6, 13, tzinfo=UTC))  # a Saturday the 13th
    assert c.matches(datetime(2026, 6, 5, tzinfo=UTC))  # a Friday the 5th
    assert not c.matches(datetime(2026, 6, 6, tzinfo=UTC))


def test_open_window_and_next_opening_follow_the_time_zone() -> None:
    c = Cron.parse("0 22 * * *")
    # 22:30 in Paris in summer is 20:30 UTC: open since 20:00 UTC.
    assert active_start(c, PARIS, 7200, _utc(2026, 6, 1, 20, 30)) == _utc(2026, 6, 1, 20, 0)
    assert active_start(c, PARIS, 7200, _utc(2026, 6, 1, 22, 0)) is None  # closed at midnight
    assert next_start(c, PARIS, _utc(2026, 6, 1, 12)) == _utc(2026, 6, 1, 20, 0)
    # In winter Paris is UTC+1.
    assert next_start(c, PARIS, _utc(2026, 12, 1, 12)) == _utc(2026, 12, 1, 21, 0)


@pytest.mark.parametrize(
    "bad", ["", "* * * *", "60 * * * *", "* * 0 * *", "a * * * *", "1-2-3 * * * *"]
)
def test_bad_schedules_are_refused(bad: str) -> None:
    with pytest.raises(CronError):
        Cron.parse(bad)
