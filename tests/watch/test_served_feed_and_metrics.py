"""The watcher's feed and metrics as a reader and a scraper get them: the feed
names itself (`rel="self"`), its links open on the server, its entry ids are tag
URIs; `/metrics` speaks OpenMetrics to a scraper that asks for it and the
Prometheus text format 0.0.4 to every other."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

import feedparser
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from apply.helpers import Sim, write_config
from provgit.render import status_atom

from .helpers import Watch, start_in_sync

pytestmark = pytest.mark.slow


def _get(url: str, accept: str | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url)
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.status, r.read().decode(), dict(r.headers)


def test_served_feed_links_itself_and_resolving_entries(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    w = start_in_sync(write_config(tmp_path / "config", sims, users=2), watches)
    feed_url = w.url + "/feed.atom"
    code, body, headers = _get(feed_url)
    assert code == 200 and headers["Content-Type"].startswith("application/atom+xml")
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.get("bozo_exception")
    links = {link["rel"]: link["href"] for link in feed.feed.links}
    assert links["self"] == feed_url
    code, page, _ = _get(urljoin(feed_url, links["alternate"]))
    assert code == 200 and "<title>" in page
    assert feed.entries, "the first run leaves events"
    ids = [entry.id for entry in feed.entries]
    assert len(set(ids)) == len(ids)
    for entry in feed.entries:
        pattern = r"tag:provgit,2026:t/event/[0-9a-f]{16}/\d{8}T\d{6}Z/\d+"
        assert re.fullmatch(pattern, entry.id), entry.id
        target = urljoin(feed_url, entry.link)
        assert target.startswith(w.url + "/#event-")
        code, page, _ = _get(target)
        assert code == 200 and f'id="{target.rsplit("#", 1)[1]}"' in page


def test_metrics_negotiates_openmetrics_or_prometheus_text(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    w = start_in_sync(write_config(tmp_path / "config", sims, users=1), watches)
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    code, text, headers = _get(w.url + "/metrics", accept)
    assert code == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert "Accept" in headers.get("Vary", "")
    assert text.endswith("# EOF\n")
    # The OpenMetrics parser refuses anything that is not exactly OpenMetrics.
    families = {f.name: f for f in openmetrics_families(text)}
    assert families["provgit_watch_runs"].type == "counter"
    assert families["provgit_distribution_errors"].samples[0].value == 0

    for plain_accept in (None, "text/plain", "*/*"):
        code, text, headers = _get(w.url + "/metrics", plain_accept)
        assert code == 200
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "# EOF" not in text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert "provgit_watch_runs" in families
        assert families["provgit_pending_updates"].samples[0].value == 0


def _doc(events: list[dict[str, object]], network: str = "t") -> dict[str, object]:
    return {"network": network, "status": "Sync Completed", "generated": "x", "events": events}


def _event(n: int, time: str) -> dict[str, object]:
    return {"id": n, "time": time, "type": "sync_completed", "element": "cs1", "message": "ok"}


def test_entry_ids_differ_across_journals_and_stay_across_rewrites() -> None:
    # Event 1 of a journal, and event 1 of the journal that replaced it later.
    first = feedparser.parse(status_atom.render(_doc([_event(1, "2026-11-30T05:00:00Z")])))
    again = feedparser.parse(status_atom.render(_doc([_event(1, "2026-11-30T05:00:00Z")])))
    later = feedparser.parse(status_atom.render(_doc([_event(1, "2026-12-01T09:30:00Z")])))
    assert first.entries[0].id == again.entries[0].id
    assert first.entries[0].id != later.entries[0].id
    # A network name outside URI characters still gives a valid tag URI.
    odd = feedparser.parse(
        status_atom.render(_doc([_event(2, "2026-11-30T05:00:00Z")], "Nord Ost"))
    )
    assert odd.entries[0].id == "tag:provgit,2026:Nord%20Ost/event/20261130T050000Z/2"
    # As report files, the links point at the page beside the feed.
    links = {link["rel"]: link["href"] for link in first.feed.links}
    assert links == {"self": "feed.atom", "alternate": "index.html"}
    assert first.entries[0].link == "index.html#event-1"
