"""Work held by a suspension, a sync window or the call load, in a real
`provgit watch` process (its clock read from a file, support/watch_clock.py)
against a real IVR simulator: while held it is visible everywhere (`provgit
status`, status.json served and on disk, the status page, /metrics, the
feed); the watcher is SIGKILLed while it holds the work, and after a restart
the work is still held, then applied when the hold lifts."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from apply.helpers import Sim, cli, journal, start_sims, wait_for
from apply.test_call_load_holds import ALL, IVR_CONTENT, NONE, T0, write_ivr_config

from .helpers import TOKEN, Watch, set_clock, start_watch_with_clock

pytestmark = pytest.mark.slow

SETTINGS = """\
version: 1
network: t
apply:
  retry_attempts: 1
  retry_base_seconds: 0.02
  retry_max_seconds: 3600
  load_poll_seconds: 60
  quiet_load:
    - {limit: 20, max_wait: 2h}
windows:
  - {name: freeze, kind: deny, schedule: '0 20 * * *', duration: 1h, kinds: [workflows]}
"""
# T0 is 2026-05-28 20:26:40 UTC, inside the freeze; it closes at 21:00.
CLOSES = T0 - T0 % 86400 + 21 * 3600
AFTER = CLOSES + 60
# What holds, the status words it starts with, the metric's label, the feed's title.
KINDS = {
    "suspended": ("Suspended: cutover (since ", "suspended", "Suspended"),
    "window": ("Held by window freeze (deny, until 2026-05-28 21:00 UTC)", "window", "window"),
    "call_load": ("Deferred: call load 85 % (limit 20 %)", "call_load", "Deferred by call load"),
}


@pytest.fixture
def ivr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    (sim,) = start_sims(tmp_path, [("ivr1", "ivr")])
    try:
        yield sim
    finally:
        sim.stop()


def _content(sim: Sim) -> dict[str, list[str]]:
    records = sim.records()
    return {c: sorted(records.get(c, {})) for c in IVR_CONTENT}


def _pending(config: Path) -> set[str]:
    with journal(config / ".provgit") as j:
        return {p.last_error for p in j.pending("ivr1")}


def _status(w: Watch) -> str:
    return str(w.status()["elements"].get("ivr1", {}).get("status", ""))


def _held_metric(w: Watch, by: str) -> str | None:
    _, text, _ = w.get("/metrics")
    for line in text.splitlines():
        if line.startswith(f'provgit_held_elements{{by="{by}",element="ivr1"}} '):
            return line.rsplit(" ", 1)[1]
    return None


def _visible_everywhere(w: Watch, config: Path, kind: str) -> None:
    words, by, title = KINDS[kind]
    doc = w.status()
    ivr1 = doc["elements"]["ivr1"]
    assert str(ivr1["status"]).startswith(words), ivr1
    assert ivr1["class"] == "held"
    assert _held_metric(w, by) == "1.0"
    code, page, _ = w.get("/")
    assert code == 200 and words in page
    _, feed, _ = w.get("/feed.atom")
    assert title in feed
    status = json.loads(cli("status", str(config), "--format", "json").out)
    assert str(status["elements"]["ivr1"]["status"]).startswith(words)
    on_disk = json.loads((config / ".provgit" / "status" / "status.json").read_text())
    assert str(on_disk["elements"]["ivr1"]["status"]).startswith(words)
    assert "Sync Completed" not in str(ivr1["status"])


def _until_held(w: Watch, words: str, by: str) -> None:
    # The held metric is right from startup (the journal's word); the status
    # says "Synching" while the watcher's first run holds the work again.
    w.wait_log("run_finished", timeout=60)
    held = wait_for(lambda: _status(w).startswith(words) and _held_metric(w, by) == "1.0", 60)
    assert held, f"not held: {_status(w)!r}"


@pytest.mark.parametrize("kind", list(KINDS))
def test_work_held_survives_a_killed_watcher_and_goes_out_when_the_hold_lifts(
    ivr: Sim, tmp_path: Path, kind: str
) -> None:
    config = write_ivr_config(tmp_path / "config", ivr)
    (config / "provgit.yaml").write_text(SETTINGS)
    clock = tmp_path / "clock"
    # Only the hold under test holds: the window is closed and the load quiet otherwise.
    set_clock(clock, T0 if kind == "window" else AFTER)
    ivr.faults(call_load=85 if kind == "call_load" else 5)
    if kind == "suspended":
        assert cli("suspend", str(config), "--reason", "cutover").code == 0
    words, by, _ = KINDS[kind]

    first = start_watch_with_clock(clock, config)
    try:
        _until_held(first, words, by)
        _visible_everywhere(first, config, kind)
        assert _content(ivr) == NONE
    finally:
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=30)
    assert first.proc.returncode == -signal.SIGKILL
    (reason,) = _pending(config)  # kept in the journal, naming the hold
    assert reason.startswith(words)

    second = start_watch_with_clock(clock, config)
    try:
        _until_held(second, words, by)
        _visible_everywhere(second, config, kind)
        assert _content(ivr) == NONE
        # A suspension holds the media server too; the others hold IVR content only.
        assert len(_pending_rows(config)) == (4 if kind == "suspended" else 3)
        if kind == "suspended":
            code, answer = second.post("/resume", TOKEN)
            assert code == 200, answer
        elif kind == "window":
            set_clock(clock, CLOSES)
        else:
            ivr.faults(call_load=5)
            set_clock(clock, AFTER + 60)  # one load poll later
        _until(lambda: _content(ivr) == ALL)
        _until(lambda: _pending(config) == set())
        _until(lambda: _status(second) == "Sync Completed")
        _until(lambda: _held_metric(second, by) == "0.0")
    finally:
        problems = second.shutdown_problems()
    assert problems == []


def _pending_rows(config: Path) -> list[object]:
    with journal(config / ".provgit") as j:
        return list(j.pending("ivr1"))


def _until(predicate: Callable[[], bool]) -> None:
    assert wait_for(predicate, 60), "timed out"
