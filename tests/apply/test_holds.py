"""Suspensions and sync windows hold writes as pending updates, against real
simulators, with a fake clock injected into the engine (never patched)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from provgit.api.planning import plan_network
from provgit.apply import ApplyOptions, ApplyResult
from provgit.cli.common import read_source
from provgit.plan import PlanOptions
from provgit.validate import validate_source

from .helpers import Sim, apply_in_process, cli, cli_process, journal, start_sims, write_config

pytestmark = pytest.mark.slow

# A deny window every day 22:00-00:00 UTC on the call servers' users.
DENY = """\
windows:
  - name: evening_freeze
    kind: deny
    schedule: "0 22 * * *"
    duration: 2h
    time_zone: UTC
    kinds: [users]
"""


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t


def _at(hour: int, minute: int = 0) -> float:
    return datetime(2026, 6, 1, hour, minute, tzinfo=UTC).timestamp()


@pytest.fixture
def sims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sim]]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    started = start_sims(tmp_path, [("cs1", "mivb")])
    try:
        yield started
    finally:
        for s in started:
            s.stop()


def _apply(config: Path, clock: FakeClock, override: str | None = None) -> ApplyResult:
    async def go() -> ApplyResult:
        source = read_source(config)
        valid = validate_source(source, None)
        run = await plan_network(valid.state, source, config, config / ".provgit", PlanOptions())
        options = ApplyOptions(check_stale=False, fresh=True, clock=clock, override_window=override)
        return await apply_in_process(valid, run.plan, config, options)

    return asyncio.run(go())


def _element(result: ApplyResult, name: str) -> dict[str, object]:
    return next(e.to_json() for e in result.elements if e.element == name)


def test_deny_window_holds_users_as_pending_naming_it_then_releases_them(
    sims: list[Sim], tmp_path: Path
) -> None:
    (cs1,) = sims
    config = write_config(tmp_path / "config", sims, users=2, extra_settings=DENY)
    clock = FakeClock(_at(22, 30))
    held = _apply(config, clock)
    e = _element(held, "cs1")
    assert e["outcome"] == "held"
    assert str(e["status"]).startswith("Held by window evening_freeze (deny, until 2026-06-02")
    assert "users" not in cs1.records()  # nothing of the window's kind written
    # The COS (not in the window's scope) went out.
    assert cs1.records().get("cos")
    j = journal(config / ".provgit")
    try:
        pending = [p for p in j.pending("cs1") if p.collection == "users"]
        assert len(pending) == 2
        assert all("evening_freeze" in p.last_error for p in pending)
        assert any(ev.type == "window_held" for ev in j.events())
    finally:
        j.close()
    clock.t = _at(23, 59)  # still closed
    assert _element(_apply(config, clock), "cs1")["outcome"] == "held"
    clock.t = _at(0, 0) + 86400  # the window closed at midnight
    released = _apply(config, clock)
    assert _element(released, "cs1")["outcome"] == "applied"
    assert set(cs1.records()["users"]) == {"user0", "user1"}
    j = journal(config / ".provgit")
    try:
        assert j.pending("cs1") == []
    finally:
        j.close()


def test_override_window_goes_through_and_is_journaled(sims: list[Sim], tmp_path: Path) -> None:
    (cs1,) = sims
    config = write_config(tmp_path / "config", sims, users=2, extra_settings=DENY)
    result = _apply(config, FakeClock(_at(22, 30)), override="CAB-42 emergency")
    assert _element(result, "cs1")["outcome"] == "applied"
    assert set(cs1.records()["users"]) == {"user0", "user1"}
    j = journal(config / ".provgit")
    try:
        overrides = [
            ev for ev in j.events() if ev.type == "window_override" and ev.element == "cs1"
        ]
        assert len(overrides) == 1
        assert "evening_freeze" in overrides[0].message
        assert "CAB-42 emergency" in overrides[0].message
    finally:
        j.close()


def test_allow_window_holds_outside_it(sims: list[Sim], tmp_path: Path) -> None:
    (cs1,) = sims
    allow = (
        "windows:\n  - {name: weeknights, kind: allow, schedule: '0 1 * * *', "
        "duration: 3h, time_zone: Europe/Paris, elements: [cs1]}\n"
    )
    config = write_config(tmp_path / "config", sims, users=1, extra_settings=allow)
    clock = FakeClock(_at(12))
    e = _element(_apply(config, clock), "cs1")
    assert e["outcome"] == "held"
    assert "opens 2026-06-02 01:00 Europe/Paris" in str(e["status"])
    assert cs1.records() == {}
    clock.t = _at(0)  # 02:00 in Paris (summer time): open
    assert _element(_apply(config, clock), "cs1")["outcome"] == "applied"
    assert "user0" in cs1.records()["users"]


def test_suspension_survives_a_new_process_and_holds_until_resumed(
    sims: list[Sim], tmp_path: Path
) -> None:
    (cs1,) = sims
    config = write_config(tmp_path / "config", sims, users=2)
    r = cli("suspend", str(config), "--element", "cs1", "--reason", "quarterly audit")
    assert r.code == 0, r.out
    # Another process: the suspension comes from the journal on disk.
    run = cli_process("reconcile", str(config), "--format", "json")
    doc = json.loads(run.out)
    by = {e["element"]: e for e in doc["elements"]}
    assert by["cs1"]["outcome"] == "held", run.out
    assert by["cs1"]["status"].startswith("Suspended: quarterly audit (since ")
    assert cs1.records() == {}
    status = json.loads(cli("status", str(config), "--format", "json").out)
    assert status["elements"]["cs1"]["status"].startswith("Suspended: quarterly audit")
    assert status["elements"]["cs1"]["class"] == "held"
    assert status["suspensions"][0]["element"] == "cs1"
    j = journal(config / ".provgit")
    try:
        assert j.pending("cs1")
        assert all("Suspended: quarterly audit" in p.last_error for p in j.pending("cs1"))
        assert [ev.type for ev in j.events()].count("suspended") == 1
    finally:
        j.close()
    assert cli("resume", str(config), "--element", "cs1").code == 0
    again = cli_process("reconcile", str(config), "--format", "json")
    assert again.code == 0, again.out + again.err
    assert set(cs1.records()["users"]) == {"user0", "user1"}
    j = journal(config / ".provgit")
    try:
        assert j.pending("cs1") == []
        assert "resumed" in [ev.type for ev in j.events()]
        assert j.suspensions() == {}
    finally:
        j.close()


def test_network_wide_suspension_holds_every_element(sims: list[Sim], tmp_path: Path) -> None:
    (cs1,) = sims
    config = write_config(tmp_path / "config", sims, users=1)
    assert cli("suspend", str(config), "--reason", "freeze").code == 0
    e = _element(_apply(config, FakeClock(_at(12))), "cs1")
    assert e["outcome"] == "held"
    assert cs1.records() == {}


def test_plan_shows_what_a_window_or_a_suspension_would_hold(
    sims: list[Sim], tmp_path: Path
) -> None:
    (cs1,) = sims
    # Opens every minute for an hour: closed to users whenever the test runs.
    always = (
        "windows:\n"
        "  - {name: always, kind: deny, schedule: '* * * * *', duration: 1h, kinds: [users]}\n"
    )
    config = write_config(tmp_path / "config", sims, users=2, extra_settings=always)
    r = cli("plan", str(config))
    assert r.code == 0, r.out
    lines = r.out.splitlines()
    assert any(
        line.strip().startswith("would wait: deny window 'always' (until ")
        and line.endswith(": 2 operation(s)")
        for line in lines
    ), r.out
    assert any("users/user0  (would wait)" in line for line in lines), r.out
    assert "4 would wait if applied now" in r.out  # cs1 and mcl users
    assert cli("suspend", str(config), "--element", "cs1", "--reason", "audit").code == 0
    r = cli("plan", str(config))
    assert any(
        line.strip().startswith("would wait: suspended: audit (since ")
        for line in r.out.splitlines()
    ), r.out
    assert cs1.records() == {}  # planning wrote nothing


def test_suspend_refuses_an_unknown_element_and_changes_nothing(
    sims: list[Sim], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", sims, users=1)
    r = cli("suspend", str(config), "--element", "cs9", "--reason", "typo")
    assert r.code == 1
    assert "unknown element 'cs9'" in r.err and "cs1" in r.err
    assert not (config / ".provgit" / "journal.sqlite").exists()
