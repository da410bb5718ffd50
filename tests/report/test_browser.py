"""The status page opened in a real headless Chromium: what a user sees, filtered by
the page's own script, and a screenshot; nothing is loaded from elsewhere."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .conftest import Lab

BROWSER_TIMEOUT = 45


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("PROVGIT_SKIP_BROWSER") == "1":
        pytest.skip("PROVGIT_SKIP_BROWSER=1: the status page is not opened in a browser")
    pytest.fail(
        "chromium is not installed: the status page tests need Debian's `chromium` package "
        "(scripts/test installs it when run as root; or set PROVGIT_SKIP_BROWSER=1 to skip)"
    )


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    argv = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=BROWSER_TIMEOUT)
    assert p.returncode == 0, f"chromium failed ({p.returncode}): {p.stderr[-2000:]}"
    return p


def dump_dom(tmp_path: Path, url: str) -> str:
    return run_chromium(tmp_path, "--dump-dom", url).stdout


def rows(dom: str, table_id: str) -> list[str]:
    body = dom.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr[^>]*>.*?</tr>", body.split("<tbody>", 1)[1], re.S)


def text(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()


def test_page_renders_statuses_errors_and_links(lab: Lab, tmp_path: Path) -> None:
    page = lab.reports / "index.html"
    dom = dump_dom(tmp_path, page.as_uri())
    # Elements in the seeds' words, exactly.
    by_element = {}
    for row in rows(dom, "elements"):
        name = re.search(r'data-element="([^"]+)"', row)
        assert name
        by_element[name.group(1)] = row
    assert set(by_element) == {"mcl", "mivb1", "mivb2", "ivr1"}
    assert '<span class="status failed">Failed mivb2</span>' in by_element["mivb2"]
    for name in ("mcl", "mivb1", "ivr1"):
        assert '<span class="status ok">Sync Completed</span>' in by_element[name]
    assert 'id="overall" class="badge failed">Sync Incomplete<' in dom
    assert "warning alarm" in dom
    # The distribution error, SDS columns, with its reach-through link.
    (err,) = rows(dom, "distribution-errors")
    assert "DN 2002 is already used by users/intruder" in err
    assert (
        'href="https://mivb2.example.net/admin/User%20and%20Device%20Configuration?key=asmith"'
        in err
    )
    # The script ran: no filter, every resource shown and counted.
    resources = rows(dom, "resources")
    assert resources and not any(" hidden" in r.split(">", 1)[0] for r in resources)
    assert f"{len(resources)} of {len(resources)} shown" in dom
    # The shared-data marker on a resource landing on several elements, not on one.
    cos = next(r for r in resources if 'data-kind="classes_of_service"' in r)
    ms = next(r for r in resources if 'data-kind="ivr_media_servers"' in r)
    assert 'class="shared"' in cos and 'class="shared"' not in ms
    # Events, newest first.
    assert 'data-type="sync_failed"' in dom and "Failed mivb2 (" in dom


def test_filter_from_the_fragment_hides_other_rows(lab: Lab, tmp_path: Path) -> None:
    page = lab.reports / "index.html"
    url = page.as_uri() + "#kind=users&status=Sync%20Incomplete"
    dom = dump_dom(tmp_path, url)
    resources = rows(dom, "resources")
    visible = [r for r in resources if " hidden" not in r.split(">", 1)[0]]
    assert [text(r).split(" ")[:2] for r in visible] == [["users", "asmith"]]
    assert "Sync Incomplete" in text(visible[0])
    assert len(resources) > 1, "other resources are in the page, hidden"
    assert f"1 of {len(resources)} shown" in dom
    assert 'data-filter-kind="users"' in dom and 'data-filter-status="Sync Incomplete"' in dom


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str, str]] = []  # tag, attr, value, class

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name in ("src", "href", "srcset", "action", "data", "poster", "background"):
            if a.get(name):
                self.refs.append((tag, name, a[name] or "", a.get("class") or ""))


def test_no_external_resource_only_reach_through_links(lab: Lab) -> None:
    html = lab.read("index.html")
    parser = _Refs()
    parser.feed(html)
    allowed = {link["url"] for r in lab.doc["resources"] for link in r["links"] if link["url"]} | {
        e["url"] for e in lab.doc["distribution_errors"] if e["url"]
    }
    assert allowed, "the lab has reach-through links"
    external = [r for r in parser.refs if re.match(r"(?i)^\s*(https?:)?//", r[2])]
    for tag, attr, value, cls in external:
        assert (tag, attr, cls) == ("a", "href", "reach"), (tag, attr, value)
        assert value.replace("&amp;", "&") in allowed
    # Nothing is fetched: no src at all, no stylesheet or script by reference, CSP says so.
    assert not [r for r in parser.refs if r[1] != "href"]
    assert not [r for r in parser.refs if r[0] == "link" and r[2] != "feed.atom"]
    assert "default-src 'none'" in html
    assert not re.search(r"(?i)@import|url\(", html)


def test_screenshot(lab: Lab, tmp_path: Path) -> None:
    shot = tmp_path / "status.png"
    run_chromium(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1280,900",
        (lab.reports / "index.html").as_uri(),
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000, "a blank page compresses to a few KB"
    keep = os.environ.get("PROVGIT_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
