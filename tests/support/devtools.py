"""A headless Chromium driven over the DevTools protocol (aiohttp's websocket
client), for page tests that must act and then watch: evaluate script, wait for
a condition (bounded), emulate a screen size. Chromium listens on 127.0.0.1 only
and is terminated when the context ends."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from report.test_browser import chromium

START_TIMEOUT = 30.0


class Page:
    """One browser tab over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = await asyncio.wait_for(self.ws.receive_json(), 30)
            if message.get("id") == ident:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    async def eval(self, expression: str) -> Any:
        answer = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in answer, answer
        return answer["result"].get("value")

    async def wait_for(self, expression: str, timeout: float) -> Any:
        """Poll `expression` until it is truthy (bounded); its value."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = await self.eval(expression)
            if value:
                return value
            await asyncio.sleep(0.25)
        raise AssertionError(f"not within {timeout} s: {expression}")

    async def open(self, url: str, width: int, height: int = 800) -> None:
        """Load `url` in a viewport `width` px wide (a phone: mobile emulation)."""
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        await self.send("Page.enable")
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", 30)


@asynccontextmanager
async def browser(tmp_path: Path) -> AsyncIterator[Page]:
    argv = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={tmp_path / 'profile'}",
        "about:blank",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = await asyncio.wait_for(asyncio.to_thread(_devtools_port, proc), START_TIMEOUT)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                targets = await r.json()
            page = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _devtools_port(proc: subprocess.Popen[str]) -> int:
    assert proc.stderr is not None
    for line in proc.stderr:
        found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if found:
            return int(found.group(1))
    raise AssertionError("chromium exited before it listened for DevTools")


AXE_VERSION = "4.14.1"


def axe_source() -> str:
    """axe-core's script, as scripts/test fetched it at setup (never here)."""
    import os

    import pytest

    default = Path(__file__).resolve().parents[2] / ".venv" / f"axe-core-{AXE_VERSION}"
    path = Path(os.environ.get("PROVGIT_AXE_JS") or default / "axe.min.js")
    if path.is_file():
        return path.read_text(encoding="utf-8")
    if os.environ.get("PROVGIT_SKIP_BROWSER") == "1":
        pytest.skip("PROVGIT_SKIP_BROWSER=1: no accessibility check in a browser")
    pytest.fail(
        f"axe-core is not at {path}: scripts/test fetches it at setup (npm pack "
        f"axe-core@{AXE_VERSION}); or set PROVGIT_AXE_JS to an axe.min.js, or "
        "PROVGIT_SKIP_BROWSER=1 to skip"
    )


async def axe_violations(page: Page, source: str) -> list[str]:
    """axe-core's violations on the page as it is now, one line each (rule, impact,
    the first nodes and what to fix); empty when it finds none."""
    await page.eval(source)
    script = (
        "axe.run(document).then(r => JSON.stringify(r.violations.map(v => v.id + ' (' + "
        "v.impact + '): ' + v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' — ' + "
        "n.failureSummary).join(' | '))))"
    )
    answer = await page.send(
        "Runtime.evaluate", expression=script, awaitPromise=True, returnByValue=True
    )
    assert "exceptionDetails" not in answer, answer
    found: list[str] = json.loads(answer["result"]["value"])
    return found
