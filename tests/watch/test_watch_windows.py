"""A real watcher (in this process, so a fake clock can be injected) against a
real simulator: a deny window holds a change and releases it when it closes;
POST /suspend holds work and POST /resume releases it."""

from __future__ import annotations

import asyncio
import io
import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from apply.helpers import Sim, start_sims, write_config
from provgit.watch.logs import Log
from provgit.watch.loop import Watcher, WatchOptions

from .helpers import commit_all, make_repo

pytestmark = pytest.mark.slow
TOKEN = "watch-test-token-not-a-secret"
DENY = """\
windows:
  - {name: evening_freeze, kind: deny, schedule: "0 22 * * *", duration: 2h, kinds: [users]}
"""


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t


@pytest.fixture
def sims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sim]]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    started = start_sims(tmp_path, [("cs1", "mivb")])
    try:
        yield started
    finally:
        for s in started:
            s.stop()


def _request(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read().decode()
            return r.status, json.loads(raw) if raw.startswith(("{", "[")) else raw
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


async def _until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await asyncio.to_thread(predicate):
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.05)


def _run_watcher(
    config: Path, clock: FakeClock, body: Callable[[Watcher, str], Awaitable[None]]
) -> str:
    """Run a watcher on `config` while `body(watcher, url)` runs; returns its log."""
    log = io.StringIO()
    options = WatchOptions(
        config=config.resolve(),
        state_dir=(config / ".provgit").resolve(),
        token=TOKEN,
        retry_check_seconds=0.05,
        resync_seconds=3600,
        clock=clock,
    )
    watcher = Watcher(options, Log("json", stream=log))

    async def main() -> None:
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(watcher.run(ready.set_result))
        try:
            url = await asyncio.wait_for(ready, 30)
            await body(watcher, url)
        finally:
            watcher.stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(main())
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    events = [line["event"] for line in lines]
    # Stopped cleanly: no run crashed, the watcher said it stopped.
    assert "run_crashed" not in events and events[-1] == "watch_stopped", lines[-10:]
    return log.getvalue()


def _at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 6, day, hour, minute, tzinfo=UTC).timestamp()


def test_deny_window_holds_a_change_and_the_watcher_releases_it_when_it_closes(
    sims: list[Sim], tmp_path: Path
) -> None:
    (cs1,) = sims
    config = write_config(tmp_path / "config", sims, users=2, extra_settings=DENY)
    clock = FakeClock(_at(1, 22, 30))

    async def body(watcher: Watcher, url: str) -> None:
        def held() -> bool:
            _, doc = _request(url + "/status.json")
            e = json.loads(doc) if isinstance(doc, str) else doc
            return str(e["elements"].get("cs1", {}).get("status", "")).startswith(
                "Held by window evening_freeze"
            )

        await _until(held)
        assert "users" not in cs1.records()
        await _until(lambda: watcher.timers.release_at == _at(2, 0))  # when the window closes
        clock.t = _at(2, 0, 1)  # the window closed
        await _until(lambda: set(cs1.records().get("users", {})) == {"user0", "user1"})

    _run_watcher(config, clock, body)


def test_post_suspend_holds_work_and_post_resume_releases_it(
    sims: list[Sim], tmp_path: Path
) -> None:
    (cs1,) = sims
    # No user at first: the start run, going as the body begins, has no user
    # to write before the suspension (it did race the POST below).
    config = write_config(tmp_path / "config", sims, users=0)
    clock = FakeClock(_at(1, 12))

    def start_run_over() -> bool:
        _, doc = _request(url_of[0] + "/status.json")
        return doc["watch"]["last_run"] is not None and doc["watch"]["running"] is None

    url_of: list[str] = []

    async def body(watcher: Watcher, url: str) -> None:
        url_of.append(url)
        await _until(start_run_over)
        code, answer = await asyncio.to_thread(_request, url + "/suspend", {})
        assert code == 400 and "reason" in answer["error"]
        code, answer = await asyncio.to_thread(
            _request,
            url + "/suspend",
            {"element": "cs1", "reason": "carrier cutover", "who": "ops"},
        )
        assert code == 200, answer
        assert answer["suspended"]["who"] == "ops"
        write_config(tmp_path / "config", sims, users=1)  # work for the suspension to hold
        code, _ = await asyncio.to_thread(_request, url + "/reconcile", {})
        assert code == 202

        def suspended_status() -> bool:
            _, doc = _request(url + "/status.json")
            e = json.loads(doc) if isinstance(doc, str) else doc
            status = str(e["elements"].get("cs1", {}).get("status", ""))
            held = e["counts"]["pending_updates"] > 0  # the run came and held the user
            return (
                status.startswith("Suspended: carrier cutover (since ")
                and e["suspensions"]
                and held
            )

        await _until(suspended_status)
        assert "users" not in cs1.records()
        _, metrics = await asyncio.to_thread(_request, url + "/metrics")
        assert 'provgit_suspended{element="cs1"} 1.0' in metrics
        code, answer = await asyncio.to_thread(_request, url + "/resume", {"element": "cs1"})
        assert code == 200 and answer["resumed"]["reason"] == "carrier cutover"
        await _until(lambda: "user0" in cs1.records().get("users", {}))
        _, metrics = await asyncio.to_thread(_request, url + "/metrics")
        assert 'provgit_suspended{element="cs1"} 0.0' in metrics

    _run_watcher(config, clock, body)


def test_suspend_and_resume_need_the_token(sims: list[Sim], tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", sims, users=1)

    async def body(watcher: Watcher, url: str) -> None:
        req = urllib.request.Request(url + "/suspend", data=b'{"reason": "x"}', method="POST")
        with pytest.raises(urllib.error.HTTPError) as e:
            await asyncio.to_thread(urllib.request.urlopen, req, timeout=10)
        assert e.value.code == 401
        assert watcher.journal.suspensions() == {}

    _run_watcher(config, FakeClock(_at(1, 12)), body)


def test_a_deny_window_holds_a_new_commits_changes_until_it_closes_in_git_mode(
    sims: list[Sim], tmp_path: Path
) -> None:
    (cs1,) = sims
    bare, work = make_repo(tmp_path)
    write_config(work, sims, users=1, extra_settings=DENY)
    commit_all(work, "one user")
    clock = FakeClock(_at(1, 12))  # before the freeze
    options = WatchOptions(
        config=(tmp_path / "state").resolve(),
        state_dir=(tmp_path / "state").resolve(),
        repo=str(bare),
        token=TOKEN,
        retry_check_seconds=0.05,
        resync_seconds=3600,
        fetch_seconds=0.1,
        clock=clock,
    )
    log = io.StringIO()
    watcher = Watcher(options, Log("json", stream=log))

    def users() -> set[str]:
        return set(cs1.records().get("users", {}))

    async def body(url: str) -> None:
        await _until(lambda: users() == {"user0"})
        clock.t = _at(1, 22, 30)  # the freeze is on
        write_config(work, sims, users=2, extra_settings=DENY)
        second = await asyncio.to_thread(commit_all, work, "a second user")

        def held() -> bool:
            _, doc = _request(url + "/status.json")
            cs = doc["elements"].get("cs1", {})
            return bool(
                doc["watch"]["config_commit"] == second
                and str(cs.get("status", "")).startswith("Held by window evening_freeze")
            )

        await _until(held)
        assert users() == {"user0"}  # the commit's user waits
        await _until(lambda: watcher.timers.release_at == _at(2, 0))
        clock.t = _at(2, 0)  # the freeze ends
        await _until(lambda: users() == {"user0", "user1"})

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
