"""status.json against its schema, the Atom feed through feedparser, the markdown
bound, no secret anywhere, and atomic writes under a concurrent reader."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import feedparser
import jsonschema
import pytest

from provgit.apply import status as st
from provgit.journal import Journal
from provgit.publish import (
    FEED_FILE,
    HTML_FILE,
    MARKDOWN_FILE,
    STATUS_FILE,
    write_reports,
)
from provgit.render import status_atom, status_markdown
from provgit.report.document import build_document

from .conftest import PIN, Lab

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "status.schema.json"


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors_of(doc: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator().iter_errors(doc)]


def synthetic(tmp_path: Path, errors: int = 3, pending: int = 2) -> Journal:
    """A journal with many distribution errors and pending updates, written directly."""
    j = Journal.open(tmp_path / "state")
    with j.transaction():
        j.set_element_status("cs1", st.failed("cs1"), "running", 1)
        j.set_element_status("cs2", st.OFFLINE, "offline", 1, "connection refused")
        j.set_element_status("ivr1", st.synching("ivr1"), "running", 1)
        for n in range(errors):
            j.upsert_distribution_error(
                element="cs1",
                collection="users",
                key=f"user{n}",
                form="User and Device Configuration",
                kind="users",
                resource=f"user{n}",
                action="add",
                error_type="refused",
                reason=f"DN {3000 + n} is already used | by someone",
                detail={"login_id": f"user{n}", "voicemail_pin": {"$sensitive": "ab", "ref": "x"}},
                fields_hash=None,
            )
        for n in range(pending):
            j.upsert_pending(
                "cs2", "users", f"p{n}", "modify", "users", f"p{n}", "connection refused", 0.0
            )
        j.set_resource_statuses(
            [
                ("workflows", "main", st.syncing("workflows", 1, 2), 1, 2),
                ("users", "user0", st.SYNC_INCOMPLETE, 1, 3),
                ("cos", "1", st.SYNC_COMPLETED, 2, 2),
            ],
            1,
        )
        j.add_event("drift", "cs1: 2 records changed outside provgit", element="cs1")
    return j


def test_status_json_valid_against_schema(lab: Lab) -> None:
    doc = json.loads(lab.read(STATUS_FILE))
    assert errors_of(doc) == []
    assert doc["format"] == "provgit.status/1"
    assert doc["source"] == {"commit": lab.commit, "dirty": False, "path": "."}
    assert {n: e["status"] for n, e in doc["elements"].items()} == {
        "mcl": "Sync Completed",
        "mivb1": "Sync Completed",
        "mivb2": "Failed mivb2",
        "ivr1": "Sync Completed",
    }
    assert all(isinstance(e["revision"], int) for e in doc["elements"].values())
    (asmith,) = [r for r in doc["resources"] if r["status"] != "Sync Completed"]
    assert (asmith["kind"], asmith["resource"], asmith["status"]) == (
        "users",
        "asmith",
        "Sync Incomplete",
    )
    assert asmith["completed"] < asmith["total"] and asmith["shared"]
    (err,) = doc["distribution_errors"]
    assert err["element"] == "mivb2" and err["action"] == "add" and err["error_type"] == "refused"
    assert err["url"].startswith("https://mivb2.example.net/admin/")
    assert doc["alarm"] == {"level": "warning", "distribution_errors": 1, "ivr_service": []}
    assert doc["run"]["command"] == "reconcile" and doc["run"]["exit_code"] == 4


def test_synthetic_document_with_every_status_is_valid(tmp_path: Path) -> None:
    with synthetic(tmp_path) as j:
        doc = build_document(j, network="t")
    assert errors_of(doc) == []
    statuses = {r["status"] for r in doc["resources"]}
    assert statuses == {"Syncing IVRs 1/2 Completed", "Sync Incomplete", "Sync Completed"}
    assert doc["elements"]["ivr1"]["status"] == "Synching ivr1"
    assert doc["elements"]["cs2"]["class"] == "down"
    assert len(doc["pending_updates"]) == 2 and doc["pending_updates"][0]["url"] is None


def test_feed_parses_without_bozo_and_matches_events(lab: Lab) -> None:
    feed = feedparser.parse(lab.read(FEED_FILE))
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    with Journal.open(lab.root / ".provgit") as j:
        events = j.recent_events(1000)
        identity = j.identity()
    assert [e.id for e in reversed(events)] == [int(x.id.rsplit("/", 1)[1]) for x in feed.entries]
    for entry, ev in zip(feed.entries, reversed(events), strict=True):
        assert entry.id == status_atom.entry_id("lab", ev.id, ev.to_json()["time"], identity)
        assert entry.summary == ev.message
        assert entry.tags[0].term == ev.type
    titles = [x.title for x in feed.entries]
    assert "Sync failed: mivb2" in titles and "Alarm raised" in titles
    assert "Sync Completed: mcl" in titles


def test_feed_entry_ids_are_stable_across_rewrites(tmp_path: Path) -> None:
    with synthetic(tmp_path) as j:
        first = write_reports(tmp_path / "r", j)
        ids1 = [x.id for x in feedparser.parse((tmp_path / "r" / FEED_FILE).read_text()).entries]
        j.add_event("alarm_cleared", "data distribution alarm cleared")
        write_reports(tmp_path / "r", j)
        ids2 = [x.id for x in feedparser.parse((tmp_path / "r" / FEED_FILE).read_text()).entries]
    assert first.warnings == []
    assert ids2[1:] == ids1 and len(ids2) == len(ids1) + 1


def test_feed_entry_ids_of_two_journals_of_one_network_differ_in_the_same_second(
    tmp_path: Path,
) -> None:
    ids: list[list[str]] = []
    for name in ("a", "b"):
        with Journal.open(tmp_path / name) as j:
            j.add_event("sync_completed", "cs1: Sync Completed", element="cs1")
            doc = build_document(j, network="t")
        # The same event id at the same second in both journals.
        doc["events"][0]["time"] = "2026-12-06T12:00:00Z"
        feed = feedparser.parse(status_atom.render(doc))
        assert not feed.bozo, feed.get("bozo_exception")
        ids.append([x.id for x in feed.entries])
    (a,), (b,) = ids
    assert a != b and a.rsplit("/", 1)[1] == b.rsplit("/", 1)[1] == "1"
    # Each journal keeps its identity: the ids stay across reopenings.
    with Journal.open(tmp_path / "a") as j:
        again = build_document(j, network="t")
    again["events"][0]["time"] = "2026-12-06T12:00:00Z"
    assert [x.id for x in feedparser.parse(status_atom.render(again)).entries] == [a]


def test_markdown_summary_first_and_bounded(tmp_path: Path) -> None:
    with synthetic(tmp_path, errors=400, pending=50) as j:
        doc = build_document(j, network="t")
    text = status_markdown.render(doc, 4000)
    assert len(text.encode()) <= 4000
    assert text.startswith("## provgit: Sync Incomplete — t\n")
    assert "400 distribution error(s), 50 pending update(s)" in text.split("###")[0]
    cut = text.strip().splitlines()[-1]
    assert cut.startswith("_Cut to fit 4000 bytes: ") and "distribution errors" in cut
    assert "50 pending updates" in cut and "not shown" in cut
    shown = text.count("| refused |")
    assert 0 < shown < 400 and f"{400 - shown} distribution errors" in cut
    # A pipe in a reason stays inside its cell.
    assert "already used \\| by someone" in text
    full = status_markdown.render(doc, 10_000_000)
    assert "Cut to fit" not in full and full.count("| refused |") == 400


def test_markdown_of_the_lab(lab: Lab) -> None:
    text = lab.read(MARKDOWN_FILE)
    assert text.startswith("## provgit: Sync Incomplete — lab\n")
    assert "| mivb2 | Failed mivb2 |" in text
    assert "[asmith](https://mivb2.example.net/admin/" in text
    assert f"commit `{lab.commit[:12]}`" in text


def test_no_secret_in_any_report(lab: Lab, tmp_path: Path) -> None:
    for name in (STATUS_FILE, MARKDOWN_FILE, HTML_FILE, FEED_FILE):
        assert PIN not in lab.read(name), name
    with synthetic(tmp_path) as j:
        doc = build_document(j)
    assert doc["distribution_errors"][0]["detail"]["voicemail_pin"] == "(sensitive)"


def test_reports_are_written_atomically(tmp_path: Path) -> None:
    """A reader polling the files while they are rewritten never sees half a file."""
    out = tmp_path / "r"
    with synthetic(tmp_path, errors=200, pending=20) as j:
        write_reports(out, j)
        stop = threading.Event()
        problems: list[str] = []
        reads = [0]

        def reader() -> None:
            while not stop.is_set():
                try:
                    json.loads((out / STATUS_FILE).read_bytes())
                    ET.fromstring((out / FEED_FILE).read_bytes())
                    html = (out / HTML_FILE).read_text(encoding="utf-8")
                    assert html.rstrip().endswith("</html>")
                    md = (out / MARKDOWN_FILE).read_text(encoding="utf-8")
                    assert md.startswith("## provgit:")
                except Exception as e:
                    problems.append(repr(e))
                reads[0] += 1

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for n in range(30):
                j.add_event("drift", f"change {n}")
                write_reports(out, j)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
    assert problems == []
    assert reads[0] > 30
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary file left"
    assert (out / HTML_FILE).stat().st_mode & 0o044 == 0o044, "reports are readable by others"


@pytest.mark.parametrize("template", ["javascript:alert(1)//{key}", "ftp://x/{key}"])
def test_only_web_links_are_rendered(template: str) -> None:
    from provgit.report.document_common import safe_url as _safe_url

    assert _safe_url(template) is None
    assert _safe_url("https://cs1.example.net/x") == "https://cs1.example.net/x"
