"""POST /suspend of an element the config lacks (a careless admin's "CS1" for
cs1): it answered 200 with the suspension, kept it in the journal and the
status page's list, and held nothing: cs1's writes went out during the
"freeze". `provgit suspend --element CS1` refuses the name; the endpoint now
does too (404, naming the known elements, nothing kept). A real watcher
against a real simulator (the harness of test_watch_windows.py)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from apply.helpers import Sim, write_config
from provgit.watch.logs import Log
from provgit.watch.loop import Watcher, WatchOptions

from .test_watch_windows import TOKEN, FakeClock, _at, _request, _run_watcher, _until, sims

pytestmark = pytest.mark.slow
__all__ = ["sims"]  # the fixture, used by name


def test_post_suspend_of_an_element_the_config_lacks_is_refused(
    sims: list[Sim], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", sims, users=0)

    async def body(watcher: Watcher, url: str) -> None:
        def start_run_over() -> bool:
            _, doc = _request(url + "/status.json")
            return doc["watch"]["last_run"] is not None and doc["watch"]["running"] is None

        await _until(start_run_over)
        code, answer = await asyncio.to_thread(
            _request, url + "/suspend", {"element": "CS1", "reason": "carrier cutover"}
        )
        assert code == 404, answer
        assert "unknown element 'CS1'" in answer["error"] and "cs1" in answer["error"], answer
        assert watcher.journal.suspensions() == {}
        _, doc = await asyncio.to_thread(_request, url + "/status.json")
        assert json.dumps(doc).count("carrier cutover") == 0
        # The right name still suspends.
        code, answer = await asyncio.to_thread(
            _request, url + "/suspend", {"element": "cs1", "reason": "carrier cutover"}
        )
        assert code == 200 and answer["suspended"]["reason"] == "carrier cutover", answer

    _run_watcher(config, FakeClock(_at(1, 12)), body)


def test_a_reason_without_spaces_reaches_the_plain_log_quoted(
    sims: list[Sim], tmp_path: Path
) -> None:
    # A value with no space was written as it was: a line break forged a log
    # line, an escape sequence reached the terminal following the log.
    config = write_config(tmp_path / "config", sims, users=0)
    log = io.StringIO()
    options = WatchOptions(
        config=config.resolve(),
        state_dir=(config / ".provgit").resolve(),
        token=TOKEN,
        retry_check_seconds=0.05,
        resync_seconds=3600,
        clock=FakeClock(_at(1, 12)),
    )
    watcher = Watcher(options, Log("plain", stream=log))
    reason = "cutover\n2026-06-01T12:00:00.000Z\x1b[32minfo\x1b[0mall_in_sync"

    async def main() -> None:
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(watcher.run(ready.set_result))
        try:
            url = await asyncio.wait_for(ready, 30)
            code, answer = await asyncio.to_thread(
                _request, url + "/suspend", {"element": "cs1", "reason": reason}
            )
            assert code == 200, answer
        finally:
            watcher.stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(main())
    lines = log.getvalue().splitlines()
    (said,) = [line for line in lines if " suspended " in line]
    assert "\x1b" not in log.getvalue()
    assert not any(line.startswith("2026-06-01T12:00:00.000Z") for line in lines), lines
    assert json.dumps(reason) in said, said
