"""What the watcher says about held work, every moment: the held-elements
gauge from startup (the journal's word, before any run) and after each
release; a `hold_released` event and log line naming why held work goes out;
and, in git mode, no run on fetch ticks that find the ref unmoved while work
is held. A real watcher in this process with a fake clock injected, real
simulators (the IVR one with a call load)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apply.helpers import Sim, journal, start_sims, write_config
from apply.test_call_load_holds import ALL, NONE, T0
from provgit.watch.logs import Log
from provgit.watch.loop import Watcher
from provgit.watch.options import WatchOptions

from .helpers import commit_all, make_repo
from .test_watch_hold_release import DEFERRED, _config, _content, _status
from .test_watch_windows import DENY, TOKEN, FakeClock, _at, _request, _run_watcher, _until

pytestmark = pytest.mark.slow


@pytest.fixture
def ivr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    (sim,) = start_sims(tmp_path, [("ivr1", "ivr")], "--call-load", "85")
    try:
        yield sim
    finally:
        sim.stop()


def _held(url: str) -> dict[tuple[str, str], float]:
    _, text = _request(url + "/metrics")
    return {
        (str(s.labels["element"]), str(s.labels["by"])): s.value
        for f in text_string_to_metric_families(text)
        if f.name == "provgit_held_elements"
        for s in f.samples
    }


def _released(config: Path) -> list[str]:
    with journal(config / ".provgit") as j:
        return [ev.message for ev in j.events() if ev.type == "hold_released"]


def _logged(log: str, event: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log.splitlines()]
    return [line for line in lines if line.get("event") == event]


def _status_events(url: str, kind: str) -> list[str]:
    _, doc = _request(url + "/status.json")
    return [e["message"] for e in doc["events"] if e["type"] == kind]


def test_held_gauge_is_restored_from_the_journal_at_startup_and_cleared_on_release(
    ivr: Sim, tmp_path: Path
) -> None:
    config = _config(tmp_path, ivr)
    clock = FakeClock(T0)

    async def first(watcher: Watcher, url: str) -> None:
        await _until(lambda: _status(url) == DEFERRED)
        await _until(lambda: _held(url).get(("ivr1", "call_load")) == 1.0)

    _run_watcher(config, clock, first)

    # Restarted while every read of the element hangs: no run can finish, so
    # the gauge can only come from the journal.
    ivr.faults(latency_ms=60_000)

    async def restarted(watcher: Watcher, url: str) -> None:
        assert await asyncio.to_thread(_held, url) == {("ivr1", "call_load"): 1.0}
        assert watcher.live.running is not None or not _released(config)

    _run_watcher(config, clock, restarted)

    ivr.faults(latency_ms=0)

    async def released(watcher: Watcher, url: str) -> None:
        await _until(lambda: watcher.timers.load_poll_at is not None)
        await asyncio.to_thread(ivr.faults, call_load="0:10")
        clock.t = watcher.timers.load_poll_at or T0
        await _until(lambda: _content(ivr) == ALL)
        await _until(lambda: _held(url).get(("ivr1", "call_load")) == 0.0)

    _run_watcher(config, clock, released)


def test_a_load_drop_release_is_an_event_and_a_log_line_naming_the_load(
    ivr: Sim, tmp_path: Path
) -> None:
    config = _config(tmp_path, ivr)
    clock = FakeClock(T0)

    async def body(watcher: Watcher, url: str) -> None:
        await _until(lambda: _status(url) == DEFERRED)
        await _until(lambda: watcher.timers.load_poll_at == T0 + 60)
        assert await asyncio.to_thread(_status_events, url, "hold_released") == []
        await asyncio.to_thread(ivr.faults, call_load="0:10")
        clock.t = T0 + 60
        await _until(lambda: _content(ivr) == ALL)
        await _until(lambda: bool(_status_events(url, "hold_released")))
        (told,) = await asyncio.to_thread(_status_events, url, "hold_released")
        assert told.startswith("ivr1: released: call load fell to 10 %"), told

    log = _run_watcher(config, clock, body)
    (line,) = _logged(log, "hold_released")
    assert line["element"] == "ivr1" and line["why"] == "released: call load fell to 10 %"
    assert len(_released(config)) == 1


def test_max_wait_release_is_an_event_naming_max_wait(ivr: Sim, tmp_path: Path) -> None:
    config = _config(tmp_path, ivr)
    clock = FakeClock(T0)

    async def body(watcher: Watcher, url: str) -> None:
        await _until(lambda: _status(url) == DEFERRED)
        await _until(lambda: watcher.timers.release_at == T0 + 1800)
        clock.t = T0 + 1800
        await _until(lambda: _content(ivr) == ALL)

    log = _run_watcher(config, clock, body)
    (told,) = _released(config)
    assert told.startswith("ivr1: released: max_wait reached"), told
    assert [line["why"] for line in _logged(log, "hold_released")] == ["released: max_wait reached"]


def test_a_window_opening_release_is_an_event_and_nothing_is_told_while_held(
    ivr: Sim, tmp_path: Path
) -> None:
    freeze = (
        "windows:\n  - {name: freeze, kind: deny, schedule: '0 20 * * *', duration: 1h, "
        "kinds: [workflows]}\n"
    )
    config = _config(tmp_path, ivr, freeze)
    ivr.faults(call_load=5)
    clock = FakeClock(T0)

    async def body(watcher: Watcher, url: str) -> None:
        await _until(lambda: _status(url).startswith("Held by window freeze"))
        closes = T0 - (T0 % 86400) + 21 * 3600
        await _until(lambda: watcher.timers.release_at == closes)
        assert await asyncio.to_thread(_status_events, url, "hold_released") == []
        assert _content(ivr) == NONE
        clock.t = closes
        await _until(lambda: _status(url) == "Sync Completed")
        await _until(lambda: bool(_status_events(url, "hold_released")))

    log = _run_watcher(config, clock, body)
    (told,) = _released(config)
    assert told.startswith("ivr1: released: window opened"), told
    assert [line["why"] for line in _logged(log, "hold_released")] == ["released: window opened"]


def test_git_mode_does_not_rerun_held_work_on_every_fetch_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    sims = start_sims(tmp_path, [("cs1", "mivb")])
    (cs1,) = sims
    try:
        bare, work = make_repo(tmp_path)
        write_config(work, sims, users=1, extra_settings=DENY)
        commit_all(work, "one user")
        clock = FakeClock(_at(1, 22, 30))  # the freeze is on from the start
        options = WatchOptions(
            config=(tmp_path / "state").resolve(),
            state_dir=(tmp_path / "state").resolve(),
            repo=str(bare),
            token=TOKEN,
            retry_check_seconds=0.05,
            resync_seconds=3600,
            fetch_seconds=0.05,
            clock=clock,
        )
        log = io.StringIO()
        watcher = Watcher(options, Log("json", stream=log))

        # The real fetch, counted: each tick fetches the (unmoved) ref.
        follower = watcher.config.follower
        assert follower is not None
        ticks = [0]
        real_fetch = follower.fetch

        def counted_fetch() -> None:
            ticks[0] += 1
            real_fetch()

        follower.fetch = counted_fetch  # type: ignore[method-assign]

        def run_lines() -> list[str]:
            return [line for line in log.getvalue().splitlines() if '"run_finished"' in line]

        async def body(url: str) -> None:
            def held() -> bool:
                _, doc = _request(url + "/status.json")
                cs = doc["elements"].get("cs1", {})
                return str(cs.get("status", "")).startswith("Held by window evening_freeze")

            await _until(held)
            await _until(lambda: len(run_lines()) == 1)  # the start run is over
            runs, lines, seen = len(watcher.journal.runs(1000)), len(run_lines()), ticks[0]
            # Many fetch ticks: each only looks at the ref; no run, no log line,
            # and no retry run of the held work either.
            await _until(lambda: ticks[0] >= seen + 10)
            assert len(watcher.journal.runs(1000)) == runs
            assert run_lines()[lines:] == []
            assert "users" not in cs1.records()
            # The window's end wakes it; a new commit runs it at once.
            clock.t = _at(2, 0, 1)
            await _until(lambda: "user0" in cs1.records().get("users", {}))
            write_config(work, sims, users=2, extra_settings=DENY)
            await asyncio.to_thread(commit_all, work, "a second user")
            await _until(lambda: "user1" in cs1.records().get("users", {}))

        async def main() -> None:
            ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(watcher.run(ready.set_result))
            try:
                await body(await asyncio.wait_for(ready, 30))
            finally:
                watcher.stop()
                await asyncio.wait_for(task, 30)

        asyncio.run(main())
        assert '"run_crashed"' not in log.getvalue()
    finally:
        for s in sims:
            s.stop()
