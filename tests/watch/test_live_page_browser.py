"""The watcher's live status page in a real headless Chromium, driven over the
DevTools protocol (aiohttp's websocket client; Chromium on 127.0.0.1 only):
a change on the server shows up on the page without a navigation, the filter,
the URL fragment and the scroll position stay, and nothing spills sideways at
390 px (a phone held upright).

axe-core checks the page after the refresh swapped parts in (scripts/test
fetches axe-core at setup; nothing is downloaded here).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from apply.helpers import Sim, write_config
from support.devtools import axe_source, axe_violations, browser

from .helpers import Watch, start_in_sync

pytestmark = pytest.mark.slow

# The page refreshes every 5 s; a run after a config save takes a few more.
CHANGE_TIMEOUT = 90.0


USERS = "document.querySelectorAll('#resources tbody tr[data-kind=\"users\"]').length"
VISIBLE = "Array.from(document.querySelectorAll('#resources tbody tr')).filter(r => !r.hidden)"


def test_live_page_updates_in_place_keeping_filter_hash_and_scroll(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    axe = axe_source()
    config = write_config(tmp_path / "config", sims, users=2)
    w = start_in_sync(config, watches)

    async def scenario() -> None:
        async with browser(tmp_path) as page:
            # A phone held upright.
            await page.send(
                "Emulation.setDeviceMetricsOverride",
                width=390,
                height=600,
                deviceScaleFactor=1,
                mobile=True,
            )
            await page.send("Page.enable")
            await page.send("Page.navigate", url=w.url + "/#kind=users")
            await page.wait_for("document.body && document.body.dataset.filterKind", 30)
            assert await page.eval(USERS) == 2
            assert await page.eval("document.documentElement.scrollWidth") <= 390
            # The filter came from the fragment: only users are shown.
            assert await page.eval(f"{VISIBLE}.every(r => r.dataset.kind === 'users')")
            await page.eval("window.scrollTo(0, 300); window.__marker = 'kept'")
            scrolled = await page.eval("window.scrollY")
            assert scrolled > 0, "the page is long enough to scroll at 390 px"
            origin = await page.eval("performance.timeOrigin")

            # A change on the server: a third user, applied by the watcher.
            write_config(config, sims, users=3)
            await page.wait_for(f"{USERS} === 3", CHANGE_TIMEOUT)

            # No navigation happened: same document, same marker, same time origin.
            assert await page.eval("window.__marker") == "kept"
            assert await page.eval("performance.timeOrigin") == origin
            assert await page.eval("performance.getEntriesByType('navigation').length") == 1
            assert int(await page.eval("document.body.dataset.refreshed")) >= 1
            # The filter, the fragment and the scroll position stayed.
            assert await page.eval("location.hash") == "#kind=users"
            assert await page.eval("document.getElementById('f-kind').value") == "users"
            assert await page.eval(f"{VISIBLE}.every(r => r.dataset.kind === 'users')")
            assert await page.eval(f"{VISIBLE}.length") == 3
            assert await page.eval("window.scrollY") == scrolled
            assert await page.eval("document.documentElement.scrollWidth") <= 390
            assert (await page.eval("document.getElementById('live').textContent")).startswith(
                "Live: updated"
            )
            assert await axe_violations(page, axe) == []

    asyncio.run(scenario())
