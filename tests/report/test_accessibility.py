"""axe-core in Chromium finds no violation on the status page written as a file,
wide and at 390 px, and the page fits a 390 px screen without spilling sideways.
The page works without JavaScript too: every row is there, none hidden."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from support.devtools import axe_source, axe_violations, browser

from .conftest import Lab

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("width", [1280, 390])
def test_file_page_has_no_axe_violations_and_fits(lab: Lab, tmp_path: Path, width: int) -> None:
    source = axe_source()

    async def scenario() -> tuple[list[str], int]:
        async with browser(tmp_path) as page:
            await page.open((lab.reports / "index.html").as_uri(), width)
            wide = int(await page.eval("document.documentElement.scrollWidth"))
            return await axe_violations(page, source), wide

    violations, scroll_width = asyncio.run(scenario())
    assert violations == []
    assert scroll_width <= width


def test_file_page_without_javascript_shows_every_row(lab: Lab, tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, bool]:
        async with browser(tmp_path) as page:
            await page.send("Emulation.setScriptExecutionDisabled", value=True)
            await page.open((lab.reports / "index.html").as_uri() + "#kind=users", 390)
            rows = "document.querySelectorAll('#resources tbody tr')"
            total = int(await page.eval(f"{rows}.length"))
            hidden = int(await page.eval(f"Array.from({rows}).filter(r => r.hidden).length"))
            # The page's own script did not run: it would have counted the rows.
            ran = bool(await page.eval("document.getElementById('shown').textContent"))
            return total, hidden, ran

    total, hidden, ran = asyncio.run(scenario())
    assert not ran, "scripts were meant to be off"
    assert total > 1 and hidden == 0
    # The file page never fetches anything: no live refresh, no connect-src.
    html = lab.read("index.html")
    assert "data-live" not in html and "connect-src" not in html
