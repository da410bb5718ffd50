"""Call-load-aware IVR changes (apply.quiet_load) against a real IVR simulator
whose load is changed through its fault endpoint, with a fake clock injected
into the engine (never patched, no sleeps)."""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from provgit.api.planning import plan_network
from provgit.apply import ApplyOptions, ApplyResult
from provgit.cli.common import read_source
from provgit.plan import PlanOptions
from provgit.validate import validate_source

from .helpers import Sim, apply_in_process, cli, cli_killed_at, cli_process, journal, start_sims

pytestmark = pytest.mark.slow

IVR_CONTENT = ("prompts", "subroutines", "workflows")
SETTINGS = """\
version: 1
network: t
apply:
  retry_attempts: 2
  retry_base_seconds: 0.02
  retry_max_seconds: 0.1
  quiet_load:
{rules}"""
LIMIT_20 = "    - {limit: 20, max_wait: 30m}\n"
T0 = 1_780_000_000.0  # any instant: the engine only reads the clock it is given


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t


@pytest.fixture
def ivr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    (sim,) = start_sims(tmp_path, [("ivr1", "ivr")], "--call-load", "85")
    try:
        yield sim
    finally:
        sim.stop()


def _wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)


def write_ivr_config(root: Path, sim: Sim, rules: str = LIMIT_20, media: int = 1) -> Path:
    """One IVR server holding a workflow, the subroutine it calls and the prompt
    that plays, and `media` media servers (not IVR content quiet_load holds)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "provgit.yaml").write_text(SETTINGS.format(rules=rules))
    _wav(root / "prompts" / "welcome.wav")
    servers = "\n".join(f"  - {{name: ms{i}, host: 10.0.0.{i}}}" for i in range(1, media + 1))
    (root / "net.yaml").write_text(
        f"""\
elements:
  - {{name: ivr1, type: ivr, ceid: 20, driver: http, connection: {{url: '{sim.url}', timeout: 5}}}}
ivr_media_servers:
{servers}
prompts:
  - {{name: welcome, file: prompts/welcome.wav}}
subroutines:
  - name: Language Select
    steps:
      - {{action: menu, prompt: welcome, choices: {{"1": repeat}}}}
workflows:
  - name: Main Line
    media_servers: [ms1]
    steps:
      - {{action: subroutine, subroutine: Language Select}}
      - {{action: transfer, target: "2155"}}
"""
    )
    return root


def _apply(config: Path, clock: FakeClock, override: str | None = None) -> dict[str, object]:
    async def go() -> ApplyResult:
        source = read_source(config)
        valid = validate_source(source, None)
        assert valid.ok, valid.diagnostics
        run = await plan_network(valid.state, source, config, config / ".provgit", PlanOptions())
        options = ApplyOptions(check_stale=False, fresh=True, clock=clock, override_window=override)
        return await apply_in_process(valid, run.plan, config, options)

    result = asyncio.run(go())
    return next(e.to_json() for e in result.elements if e.element == "ivr1")


def _content(sim: Sim) -> dict[str, list[str]]:
    records = sim.records()
    return {c: sorted(records.get(c, {})) for c in IVR_CONTENT}


NONE: dict[str, list[str]] = {c: [] for c in IVR_CONTENT}
ALL = {
    "prompts": ["welcome:en-US"],
    "subroutines": ["Language Select"],
    "workflows": ["Main Line"],
}


def _events(config: Path, kind: str) -> list[str]:
    with journal(config / ".provgit") as j:
        return [ev.message for ev in j.events() if ev.type == kind]


def test_a_load_peak_defers_ivr_content_until_the_load_falls_then_it_lands_together(
    ivr: Sim, tmp_path: Path
) -> None:
    config = write_ivr_config(tmp_path / "config", ivr)
    clock = FakeClock(T0)
    e = _apply(config, clock)
    assert e["outcome"] == "held"
    assert e["status"] == "Deferred: call load 85 % (limit 20 %)"
    assert _content(ivr) == NONE
    # The media server is not IVR content quiet_load holds: it went out.
    assert list(ivr.records()["media_servers"]) == ["ms1"]
    with journal(config / ".provgit") as j:
        pending = j.pending("ivr1")
    assert sorted(p.collection for p in pending) == sorted(IVR_CONTENT)
    assert {p.last_error for p in pending} == {"Deferred: call load 85 % (limit 20 %)"}
    clock.t += 60
    assert _apply(config, clock)["outcome"] == "held"  # still at its peak
    assert _content(ivr) == NONE
    assert len(_events(config, "call_load_deferred")) == 1  # told once, not every retry
    ivr.faults(call_load="0:12")
    clock.t += 60
    e = _apply(config, clock)
    assert e["outcome"] == "applied", e
    assert _content(ivr) == ALL
    with journal(config / ".provgit") as j:
        assert j.pending("ivr1") == []
    assert _events(config, "call_load_waited_out") == []


def test_a_workflow_held_keeps_its_prompt_and_subroutine_back_too(ivr: Sim, tmp_path: Path) -> None:
    # Only workflows are named, and only at 20 %: the prompt and subroutine
    # the workflow needs wait with it all the same.
    rules = "    - {limit: 20, kinds: [workflows]}\n"
    config = write_ivr_config(tmp_path / "config", ivr, rules=rules)
    e = _apply(config, FakeClock(T0))
    assert e["outcome"] == "held"
    assert _content(ivr) == NONE
    held = {(op["collection"], op["status"]) for op in e["operations"]}  # type: ignore[attr-defined]
    assert held >= {(c, "pending") for c in IVR_CONTENT}
    ivr.faults(call_load=20)  # at the limit is not above it
    assert _apply(config, FakeClock(T0 + 1))["outcome"] == "applied"
    assert _content(ivr) == ALL


def test_after_max_wait_deferred_changes_go_out_whatever_the_load(ivr: Sim, tmp_path: Path) -> None:
    config = write_ivr_config(tmp_path / "config", ivr)
    clock = FakeClock(T0)
    assert _apply(config, clock)["outcome"] == "held"
    clock.t = T0 + 29 * 60
    assert _apply(config, clock)["outcome"] == "held"
    assert _content(ivr) == NONE
    clock.t = T0 + 30 * 60  # max_wait: 30m since they first waited
    e = _apply(config, clock)
    assert e["outcome"] == "applied", e
    assert _content(ivr) == ALL
    (told,) = _events(config, "call_load_waited_out")
    assert "3 IVR change(s) sent: Deferred: call load 85 % (limit 20 %)" in told
    assert "after waiting 30m" in told


def test_max_wait_then_a_deny_window_still_holds(ivr: Sim, tmp_path: Path) -> None:
    rules = (
        LIMIT_20 + "windows:\n  - {name: freeze, kind: deny, schedule: '0 0 * * *', "
        "duration: 1d, kinds: [workflows]}\n"
    )
    config = write_ivr_config(tmp_path / "config", ivr, rules=rules)
    clock = FakeClock(T0)
    e = _apply(config, clock)
    # The window holds the workflow (and so its group) before the load is asked.
    assert str(e["status"]).startswith("Held by window freeze")
    clock.t = T0 + 3600  # max_wait has passed: the load holds nothing now
    e = _apply(config, clock)
    assert str(e["status"]).startswith("Held by window freeze")
    assert _content(ivr) == NONE  # the window still holds the group whole
    assert _events(config, "call_load_waited_out") == []


def test_status_and_feed_say_deferred_with_the_numbers(ivr: Sim, tmp_path: Path) -> None:
    config = write_ivr_config(tmp_path / "config", ivr)
    run = cli_process("reconcile", str(config), "--format", "json")
    by = {e["element"]: e for e in json.loads(run.out)["elements"]}
    assert by["ivr1"]["status"] == "Deferred: call load 85 % (limit 20 %)", run.out
    status = json.loads(cli("status", str(config), "--format", "json").out)
    ivr1 = status["elements"]["ivr1"]
    assert ivr1["status"] == "Deferred: call load 85 % (limit 20 %)"
    assert ivr1["class"] == "held"
    reports = config / ".provgit" / "status"
    assert "Deferred: call load 85 % (limit 20 %)" in (reports / "index.html").read_text()
    feed = (reports / "feed.atom").read_text()
    assert "Deferred by call load" in feed and "call load 85 %" in feed


def test_a_killed_reconcile_while_held_keeps_the_work_held_then_applies_it(
    ivr: Sim, tmp_path: Path
) -> None:
    config = write_ivr_config(tmp_path / "config", ivr)
    assert cli_process("reconcile", str(config)).code != 0  # held: not in sync
    # A new media server to write, so the next run has a write to be killed at,
    # after it decided what the load holds.
    write_ivr_config(config, ivr, media=2)
    killed = cli_killed_at("1:before", "reconcile", str(config))
    assert killed.code == -9, killed.out + killed.err
    with journal(config / ".provgit") as j:
        left = j.pending("ivr1")
    assert sorted(p.collection for p in left) == sorted(IVR_CONTENT)
    again = cli_process("reconcile", str(config), "--format", "json")
    by = {e["element"]: e for e in json.loads(again.out)["elements"]}
    assert by["ivr1"]["status"] == "Deferred: call load 85 % (limit 20 %)", again.out
    assert sorted(ivr.records()["media_servers"]) == ["ms1", "ms2"]
    assert _content(ivr) == NONE
    ivr.faults(call_load=5)
    done = cli_process("reconcile", str(config))
    assert done.code == 0, done.out + done.err
    assert _content(ivr) == ALL
    with journal(config / ".provgit") as j:
        assert j.pending("ivr1") == []


def test_reconcile_override_window_sends_deferred_work_and_journals_why(
    ivr: Sim, tmp_path: Path
) -> None:
    config = write_ivr_config(tmp_path / "config", ivr)
    refused = cli("reconcile", str(config), "--override-window")
    assert refused.code != 0 and "--override-window needs --reason" in refused.out + refused.err
    assert _content(ivr) == NONE
    r = cli_process("reconcile", str(config), "--override-window", "--reason", "routing outage")
    assert r.code == 0, r.out + r.err
    assert _content(ivr) == ALL
    (told,) = _events(config, "window_override")
    assert "call load deferral overridden (call load 85 % (limit 20 %))" in told
    assert told.endswith(": routing outage")
