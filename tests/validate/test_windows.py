"""Sync windows in provgit.yaml: bad schedules, durations, time zones and scopes
are reported at their file, line and column, and the config is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from .base import summary, validate

HEAD = "version: 1\nnetwork: test\nwindows:\n"


@pytest.mark.parametrize(
    ("window", "where", "text"),
    [
        (
            "  - {name: w, kind: deny, schedule: '0 25 * * *', duration: 1h}\n",
            "provgit.yaml:4:27",
            "bad schedule: hour: '25' is outside 0-23",
        ),
        (
            "  - {name: w, kind: deny, schedule: '0 22 * *', duration: 1h}\n",
            "provgit.yaml:4:27",
            "has 4 fields; a schedule has 5",
        ),
        (
            "  - {name: w, kind: deny, schedule: '*/0 * * * *', duration: 1h}\n",
            "provgit.yaml:4:27",
            "step '0' must be a whole number above 0",
        ),
        (
            "  - {name: w, kind: deny, schedule: '0 22 * * 5-1', duration: 1h}\n",
            "provgit.yaml:4:27",
            "runs backwards",
        ),
        (
            "  - {name: w, kind: deny, schedule: '0 22 * * *', duration: 2 hours}\n",
            "provgit.yaml:4:51",
            "bad duration '2 hours'",
        ),
        (
            "  - name: w\n    kind: allow\n    schedule: '0 22 * * *'\n    duration: 1h\n"
            "    time_zone: Europe/Atlantis\n",
            "provgit.yaml:8:5",
            "unknown time zone 'Europe/Atlantis'",
        ),
        (
            "  - {name: w, kind: deny, schedule: '0 22 * * *', duration: 1h, kinds: [user]}\n",
            "provgit.yaml:4:73",
            "windows[w].kinds: unknown kind 'user'",
        ),
        (
            "  - name: w\n    kind: deny\n    schedule: '0 22 * * *'\n    duration: 1h\n"
            "    elements: [cs1, cs9]\n",
            "provgit.yaml:8:21",
            "windows[w].elements: unknown element 'cs9'",
        ),
        (
            "  - {name: w, kind: allow, schedule: '0 2 30 2 *', duration: 1h}\n",
            "provgit.yaml:4:28",
            "bad schedule: day(s) 30 never occur in month(s) 2: the window would never open",
        ),
        (
            "  - {name: w, kind: allow, schedule: '0 2 31 4,6,9,11 *', duration: 1h}\n",
            "provgit.yaml:4:28",
            "day(s) 31 never occur in month(s) 4, 6, 9, 11",
        ),
    ],
    ids=[
        "hour_out_of_range",
        "four_fields",
        "zero_step",
        "backwards_range",
        "bad_duration",
        "unknown_time_zone",
        "unknown_kind",
        "unknown_element",
        "february_30th",
        "31st_of_short_months",
    ],
)
def test_bad_window_is_reported_where_it_is_written(
    tmp_path: Path, window: str, where: str, text: str
) -> None:
    result = validate(tmp_path / "config", {"provgit.yaml": HEAD + window})
    got = summary(result.diagnostics)
    assert not result.ok
    assert [g for g in got if g.startswith(where + ": ") and text in g], got


def test_good_windows_validate(tmp_path: Path) -> None:
    window = (
        "  - {name: nights, kind: allow, schedule: '30 1 * * 1-5', duration: 1d2h30m, "
        "time_zone: America/New_York, element_types: [mivb], kinds: [users]}\n"
        "  - {name: freeze, kind: deny, schedule: '0 0 24 12 *', duration: 2d, elements: [cs1]}\n"
    )
    result = validate(tmp_path / "config", {"provgit.yaml": HEAD + window})
    assert result.ok, summary(result.diagnostics)
