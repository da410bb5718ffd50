"""The watcher wakes by itself when held work may go out: a call-load
`max_wait` running out, the load falling (read every `apply.load_poll_seconds`)
and a deny window closing. A real watcher in this process with a fake clock
injected, a real IVR simulator; retries and resyncs are an hour away and
nothing POSTs /reconcile, so only the wake can release the work."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from apply.helpers import Sim, journal, start_sims
from apply.test_call_load_holds import ALL, IVR_CONTENT, NONE, T0, write_ivr_config
from provgit.watch.loop import Watcher

from .test_watch_windows import FakeClock, _request, _run_watcher, _until

pytestmark = pytest.mark.slow

# Retries an hour apart: a release inside the test comes from the wake.
SETTINGS = """\
version: 1
network: t
apply:
  retry_attempts: 1
  retry_base_seconds: 0.02
  retry_max_seconds: 3600
  load_poll_seconds: 60
  quiet_load:
    - {{limit: 20, max_wait: 30m}}
{windows}"""
DEFERRED = "Deferred: call load 85 % (limit 20 %)"


@pytest.fixture
def ivr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    (sim,) = start_sims(tmp_path, [("ivr1", "ivr")], "--call-load", "85")
    try:
        yield sim
    finally:
        sim.stop()


def _config(tmp_path: Path, sim: Sim, windows: str = "") -> Path:
    config = write_ivr_config(tmp_path / "config", sim)
    (config / "provgit.yaml").write_text(SETTINGS.format(windows=windows))
    return config


def _content(sim: Sim) -> dict[str, list[str]]:
    records = sim.records()
    return {c: sorted(records.get(c, {})) for c in IVR_CONTENT}


def _status(url: str) -> str:
    _, doc = _request(url + "/status.json")
    e = json.loads(doc) if isinstance(doc, str) else doc
    return str(e["elements"].get("ivr1", {}).get("status", ""))


def _runs(watcher: Watcher) -> int:
    return len(watcher.journal.runs(1000))


def _pending(config: Path) -> int:
    with journal(config / ".provgit") as j:
        return len(j.pending("ivr1"))


def test_the_watcher_sends_deferred_work_when_max_wait_runs_out_without_being_asked(
    ivr: Sim, tmp_path: Path
) -> None:
    config = _config(tmp_path, ivr)
    clock = FakeClock(T0)

    async def body(watcher: Watcher, url: str) -> None:
        await _until(lambda: _status(url) == DEFERRED)
        # first waited at T0 (the fake clock), max_wait 30m
        await _until(lambda: watcher.timers.release_at == T0 + 1800)
        assert _content(ivr) == NONE
        clock.t = T0 + 1799  # a poll is due, but the load is still at its peak
        await _until(lambda: watcher.timers.load_poll_at == T0 + 1799 + 60)
        assert _content(ivr) == NONE
        assert await asyncio.to_thread(_status, url) == DEFERRED
        clock.t = T0 + 1800
        await _until(lambda: _content(ivr) == ALL)
        await _until(lambda: _pending(config) == 0)
        await _until(lambda: _status(url) == "Sync Completed")
        # Nothing deferred any more: no wake, no load poll left.
        await _until(lambda: watcher.timers.load_poll_at is None)
        assert watcher.timers.release_at is None

    log = _run_watcher(config, clock, body)
    reasons = [json.loads(line).get("reason") for line in log.splitlines()]
    assert "release" in str(reasons)
    with journal(config / ".provgit") as j:
        (told,) = [ev.message for ev in j.events() if ev.type == "call_load_waited_out"]
    assert "after waiting 30m" in told


def test_a_load_drop_releases_deferred_work_within_one_poll(ivr: Sim, tmp_path: Path) -> None:
    config = _config(tmp_path, ivr)
    clock = FakeClock(T0)

    async def body(watcher: Watcher, url: str) -> None:
        await _until(lambda: _status(url) == DEFERRED)
        await _until(lambda: watcher.timers.load_poll_at == T0 + 60)
        runs = _runs(watcher)
        await asyncio.to_thread(ivr.faults, call_load="0:10")
        # The clock has not reached the poll: the drop is not seen, no run.
        assert _content(ivr) == NONE
        clock.t = T0 + 60  # one poll later (max_wait is 30m away)
        await _until(lambda: _content(ivr) == ALL)
        await _until(lambda: _pending(config) == 0)
        # One run released it: the poll itself read only the load.
        assert _runs(watcher) == runs + 1

    log = _run_watcher(config, clock, body)
    assert '"event": "call_load_fell"' in log or '"event":"call_load_fell"' in log
    with journal(config / ".provgit") as j:
        assert [ev for ev in j.events() if ev.type == "call_load_waited_out"] == []


def test_a_poll_reading_a_load_still_high_keeps_the_work_and_polls_again(
    ivr: Sim, tmp_path: Path
) -> None:
    config = _config(tmp_path, ivr)
    clock = FakeClock(T0)

    async def body(watcher: Watcher, url: str) -> None:
        await _until(lambda: _status(url) == DEFERRED)
        await _until(lambda: watcher.timers.load_poll_at == T0 + 60)
        runs = _runs(watcher)
        for step in (1, 2, 3):
            clock.t = T0 + 60 * step
            await _until(lambda s=step: watcher.timers.load_poll_at == T0 + 60 * (s + 1))  # type: ignore[misc]
        assert _content(ivr) == NONE
        assert await asyncio.to_thread(_status, url) == DEFERRED
        assert _runs(watcher) == runs  # the polls started no run
        assert _pending(config) == 3

    _run_watcher(config, clock, body)


def test_a_deny_window_closing_wakes_the_watcher_for_the_work_it_held(
    ivr: Sim, tmp_path: Path
) -> None:
    # Midnight to 1 am UTC, on IVR content; T0 is 2026-05-28 20:26:40 UTC.
    freeze = (
        "windows:\n  - {name: freeze, kind: deny, schedule: '0 20 * * *', duration: 1h, "
        "kinds: [workflows]}\n"
    )
    config = _config(tmp_path, ivr, freeze)
    ivr.faults(call_load=5)  # quiet: only the window holds
    clock = FakeClock(T0)

    async def body(watcher: Watcher, url: str) -> None:
        await _until(lambda: _status(url).startswith("Held by window freeze"))
        closes = T0 - (T0 % 86400) + 21 * 3600
        await _until(lambda: watcher.timers.release_at == closes)
        assert _content(ivr) == NONE
        clock.t = closes
        await _until(lambda: _content(ivr) == ALL)
        await _until(lambda: _status(url) == "Sync Completed")

    _run_watcher(config, clock, body)
