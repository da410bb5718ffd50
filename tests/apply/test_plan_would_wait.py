"""`provgit plan` marks the operations a suspension, a sync window or the call
load would hold if applied now, in text, markdown and the signed JSON, against
a real IVR simulator reporting a high load and a fake clock in a deny window.
The mark is informational: apply decides again when it runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provgit.api import Config

from .helpers import Sim, cli, cli_process, journal, start_sims
from .test_call_load_holds import ALL, IVR_CONTENT, LIMIT_20, NONE, T0, FakeClock, write_ivr_config

pytestmark = pytest.mark.slow

CONTENT = {
    ("prompts", "welcome:en-US"),
    ("subroutines", "Language Select"),
    ("workflows", "Main Line"),
}
# 20:00-21:00 UTC daily on workflows; T0 is 2026-05-28 20:26:40 UTC.
FREEZE = (
    LIMIT_20 + "windows:\n  - {name: freeze, kind: deny, schedule: '0 20 * * *', "
    "duration: 1h, kinds: [workflows]}\n"
)


@pytest.fixture
def ivr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    (sim,) = start_sims(tmp_path, [("ivr1", "ivr")], "--call-load", "85")
    try:
        yield sim
    finally:
        sim.stop()


def _content(sim: Sim) -> dict[str, list[str]]:
    records = sim.records()
    return {c: sorted(records.get(c, {})) for c in IVR_CONTENT}


def _ivr1(plan: dict[str, object]) -> dict[str, object]:
    return next(e for e in plan["elements"] if e["element"] == "ivr1")  # type: ignore[attr-defined]


def test_plan_marks_what_the_call_load_would_hold_in_text_markdown_and_json(
    ivr: Sim, tmp_path: Path
) -> None:
    config = write_ivr_config(tmp_path / "config", ivr)
    text = cli("plan", str(config))
    assert text.code == 0, text.out + text.err
    assert "would wait: call load 85 % (limit 20 %): 3 operation(s)" in text.out
    assert "workflows/Main Line  (would wait)" in text.out
    # The media server is not IVR content: planned without a mark.
    (ms1,) = [line for line in text.out.splitlines() if "media_servers/ms1" in line]
    assert "would wait" not in ms1
    assert "3 would wait if applied now" in text.out
    md = cli("plan", str(config), "--format", "markdown")
    assert "⏸️ would wait: call load 85 % (limit 20 %): 3 operation(s)" in md.out
    assert "⏸️ would wait | `workflows/Main Line`" in md.out
    js = cli("plan", str(config), "--format", "json")
    (waits,) = _ivr1(json.loads(js.out))["would_wait"]  # type: ignore[misc]
    assert waits["source"] == "call_load"
    assert waits["reason"] == "call load 85 % (limit 20 %)"
    assert {tuple(r) for r in waits["operations"]} == CONTENT
    assert _content(ivr) == NONE  # planning wrote nothing


def test_a_saved_plan_carries_the_mark_signed_and_apply_decides_again(
    ivr: Sim, tmp_path: Path
) -> None:
    config = write_ivr_config(tmp_path / "config", ivr)
    saved = tmp_path / "plan.json"
    assert cli("plan", str(config), "--out", str(saved)).code == 0
    assert "would_wait" in _ivr1(json.loads(saved.read_text()))
    # Edited, the mark breaks the signature like any other part of the plan.
    edited = tmp_path / "edited.json"
    edited.write_text(saved.read_text().replace("call load 85 %", "call load 5 %"))
    refused = cli_process("apply", str(edited), "--config", str(config), "--yes")
    assert refused.code != 0 and "signature does not match" in refused.out + refused.err
    # The load fell since the plan was made: apply sends what the plan said would wait.
    ivr.faults(call_load=5)
    done = cli_process("apply", str(saved), "--config", str(config), "--yes")
    assert done.code == 0, done.out + done.err
    assert _content(ivr) == ALL


def test_a_plan_made_while_quiet_is_still_held_if_the_load_rose_by_apply(
    ivr: Sim, tmp_path: Path
) -> None:
    config = write_ivr_config(tmp_path / "config", ivr)
    ivr.faults(call_load=5)
    saved = tmp_path / "plan.json"
    text = cli("plan", str(config), "--out", str(saved))
    assert "would wait" not in text.out
    assert "would_wait" not in _ivr1(json.loads(saved.read_text()))
    ivr.faults(call_load=85)
    held = cli_process("apply", str(saved), "--config", str(config), "--yes")
    assert held.code != 0
    assert _content(ivr) == NONE
    with journal(config / ".provgit") as j:
        reasons = {p.last_error for p in j.pending("ivr1")}
    assert reasons == {"Deferred: call load 85 % (limit 20 %)"}


def test_a_deny_window_active_at_the_planning_instant_is_named_and_holds_the_group(
    ivr: Sim, tmp_path: Path
) -> None:
    config = write_ivr_config(tmp_path / "config", ivr, rules=FREEZE)

    async def preview(t: float) -> list[dict[str, object]]:
        c = Config.at(config)
        run = await c.preview_holds(await c.plan(), clock=FakeClock(t))
        return [w.to_json() for w in run.plan.elements[0].would_wait]

    (inside,) = asyncio.run(preview(T0))
    # The window names only workflows; its prompt and subroutine wait with it,
    # and the window (the stronger hold) is named rather than the load.
    assert inside["source"] == "window"
    assert inside["reason"] == "deny window 'freeze' (until 2026-05-28 21:00 UTC)"
    assert {tuple(r) for r in inside["operations"]} == CONTENT  # type: ignore[attr-defined]
    (after,) = asyncio.run(preview(T0 + 3600))  # closed: the load holds them now
    assert after["reason"] == "call load 85 % (limit 20 %)"
    ivr.faults(call_load=5)
    assert asyncio.run(preview(T0 + 3600)) == []
    assert cli("suspend", str(config), "--reason", "cutover").code == 0
    (suspended,) = asyncio.run(preview(T0 + 3600))
    assert suspended["source"] == "suspended"
    assert str(suspended["reason"]).startswith("suspended: cutover (since ")
    assert len(suspended["operations"]) == 4  # type: ignore[arg-type]
