"""apply.quiet_load in provgit.yaml: bad limits, waits, kinds and elements are
reported at their file, line and column, and the config is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from .base import summary, validate

HEAD = "version: 1\nnetwork: test\napply:\n  quiet_load:\n"


@pytest.mark.parametrize(
    ("rule", "where", "text"),
    [
        ("    - {limit: 120}\n", "provgit.yaml:5:8", "'limit' is 120; it must be at most 100"),
        ("    - {limit: -1}\n", "provgit.yaml:5:8", "'limit' is -1; it must be at least 0"),
        ("    - {max_wait: 1h}\n", "provgit.yaml:5:7", "limit"),
        (
            "    - {limit: 20, max_wait: 2 hours}\n",
            "provgit.yaml:5:19",
            "bad duration '2 hours'",
        ),
        (
            "    - {limit: 20, max_wait: 0m}\n",
            "provgit.yaml:5:19",
            "max_wait must be longer than 0",
        ),
        (
            "    - limit: 20\n      kinds: [prompts, users]\n",
            "provgit.yaml:6:24",
            "apply.quiet_load[0].kinds: 'users' is not held by call load",
        ),
        (
            "    - {limit: 20}\n    - {limit: 30, elements: [ivr9]}\n",
            "provgit.yaml:6:30",
            "apply.quiet_load[1].elements: unknown element 'ivr9'",
        ),
        (
            "    - {limit: 20, elements: [cs1]}\n",
            "provgit.yaml:5:30",
            "apply.quiet_load[0].elements: 'cs1' is a mivb, not an IVR server",
        ),
        ("    - {limit: 20, max_load: 30}\n", "provgit.yaml:5:19", "max_load"),
    ],
    ids=[
        "limit_above_100",
        "limit_negative",
        "limit_missing",
        "bad_max_wait",
        "zero_max_wait",
        "kind_not_ivr_content",
        "unknown_element",
        "element_not_an_ivr_server",
        "unknown_key",
    ],
)
def test_bad_quiet_load_is_reported_where_it_is_written(
    tmp_path: Path, rule: str, where: str, text: str
) -> None:
    result = validate(tmp_path / "config", {"provgit.yaml": HEAD + rule})
    got = summary(result.diagnostics)
    assert not result.ok
    assert [g for g in got if g.startswith(where + ": ") and text in g], got


def test_good_quiet_load_validates_with_defaults(tmp_path: Path) -> None:
    rules = "    - {limit: 40, elements: [ivr1], kinds: [workflows]}\n    - {limit: 20}\n"
    result = validate(tmp_path / "config", {"provgit.yaml": HEAD + rules})
    assert result.ok, summary(result.diagnostics)
    first, second = result.state.settings.apply.quiet_load
    assert (first.limit, first.max_wait, first.max_wait_seconds) == (40, "2h", 7200)
    assert (second.elements, second.kinds) == ([], [])


@pytest.mark.parametrize(
    ("rule", "where", "text"),
    [
        ("    - {limit: 20, max_wait: -30m}\n", "provgit.yaml:5:19", "bad duration '-30m'"),
        ("    - {limit: 20, max_wait: ''}\n", "provgit.yaml:5:19", "bad duration ''"),
        ("    - {limit: 20, max_wait: 30}\n", "provgit.yaml:5:19", "'max_wait' must be text"),
    ],
    ids=["negative", "empty", "no_unit"],
)
def test_a_max_wait_that_could_release_at_once_is_refused_where_it_is_written(
    tmp_path: Path, rule: str, where: str, text: str
) -> None:
    result = validate(tmp_path / "config", {"provgit.yaml": HEAD + rule})
    got = summary(result.diagnostics)
    assert not result.ok
    assert [g for g in got if g.startswith(where + ": ") and text in g], got


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0", "'load_poll_seconds' is 0; it must be more than 0"),
        ("-15", "'load_poll_seconds' is -15; it must be more than 0"),
        ("86400", "'load_poll_seconds' is 86400; it must be at most 3600"),
        ("soon", "'load_poll_seconds' must be a number"),
    ],
    ids=["zero", "negative", "above_an_hour", "not_a_number"],
)
def test_a_bad_load_poll_interval_is_reported_where_it_is_written(
    tmp_path: Path, value: str, text: str
) -> None:
    settings = f"version: 1\nnetwork: test\napply:\n  load_poll_seconds: {value}\n"
    result = validate(tmp_path / "config", {"provgit.yaml": settings})
    got = summary(result.diagnostics)
    assert not result.ok
    assert [g for g in got if g.startswith("provgit.yaml:4:3: ") and text in g], got


def test_the_load_poll_interval_defaults_to_15_seconds(tmp_path: Path) -> None:
    result = validate(tmp_path / "config", {"provgit.yaml": HEAD + "    - {limit: 20}\n"})
    assert result.ok, summary(result.diagnostics)
    assert result.state.settings.apply.load_poll_seconds == 15.0
