"""An element whose change feed lies: a record changed with no feed entry.

Real simulator processes. Two lies: the simulator's silent edit (`"silent":
true` on /admin/edit: no feed entry, no revision moved, as a backup restored
under the same revision; the element's content digest still moves, so the
next run sees it at once), and an edit straight into the element's database
file (neither the feed nor the digest knows: only a full read, due by age or
`--full-read`, finds it). What is found is drift, and the element's feed is
flagged as having missed it.
"""

from __future__ import annotations

import json
import marshal
import sqlite3
from pathlib import Path

import pytest

from provgit.observe import ObservationCache

from .helpers import Sim, cli, journal, write_config

pytestmark = pytest.mark.slow


def _silent_edit(sim: Sim, comment: str) -> None:
    sim.admin(
        "/admin/edit",
        {
            "op": "put",
            "collection": "cos",
            "key": "7",
            "fields": {"number": 7, "comment": comment},
            "silent": True,
        },
    )


def _edit_database(sim: Sim, comment: str) -> None:
    """An admin edits the element's database directly, behind its back."""
    with sqlite3.connect(sim.db) as db:
        (text,) = db.execute(
            "SELECT fields FROM records WHERE collection='cos' AND key='7'"
        ).fetchone()
        fields = dict(json.loads(text), comment=comment)
        db.execute(
            "UPDATE records SET fields = ? WHERE collection = 'cos' AND key = '7'",
            (json.dumps(fields),),
        )


def _status(root: Path) -> dict[str, object]:
    ran = cli("status", str(root), "--format", "json")
    doc: dict[str, object] = json.loads(ran.out)
    return doc


def _element_status(root: Path, name: str) -> dict[str, object]:
    elements = _status(root)["elements"]
    assert isinstance(elements, dict)
    found: dict[str, object] = elements[name]
    return found


def _reconciled(root: Path, *args: str) -> None:
    ran = cli("reconcile", str(root), *args)
    assert ran.code == 0, ran.out + ran.err


@pytest.fixture
def config(sims: list[Sim], tmp_path: Path) -> Path:
    root = write_config(tmp_path / "config", sims, users=2)
    _reconciled(root)
    _reconciled(root)  # the second run takes the feed-only path
    return root


def test_between_full_reads_a_database_edit_is_not_seen(sims: list[Sim], config: Path) -> None:
    cs1 = sims[0]
    _edit_database(cs1, "Restored")
    _reconciled(config)
    # Neither the feed nor the digest said anything, so nothing was read: the
    # element still holds the edit and the status (resting on them) cannot know.
    assert cs1.records()["cos"]["7"]["comment"] == "Restored"
    assert _element_status(config, "cs1")["status"] == "Sync Completed"


def _feed_missed_once(config: Path) -> None:
    with journal(config / ".provgit") as j:
        events = j.events()
    missed = [e for e in events if e.type == "feed_missed"]
    assert [(e.element, "missed 1 change" in e.message) for e in missed] == [("cs1", True)]
    drift = [e.message for e in events if e.type == "drift" and e.element == "cs1"]
    assert any("cos/7" in m for m in drift), drift


def test_the_digest_catches_a_silent_edit_on_the_next_run(sims: list[Sim], config: Path) -> None:
    cs1 = sims[0]
    _silent_edit(cs1, "Restored")
    _reconciled(config)
    assert cs1.records()["cos"]["7"]["comment"] == "Sales"
    _feed_missed_once(config)
    _reconciled(config)
    _feed_missed_once(config)


def test_full_read_flag_finds_the_missed_change_corrects_it_and_flags_the_feed(
    sims: list[Sim], config: Path
) -> None:
    cs1 = sims[0]
    _edit_database(cs1, "Restored")
    _reconciled(config, "--full-read")
    assert cs1.records()["cos"]["7"]["comment"] == "Sales"
    _feed_missed_once(config)
    # A later run with nothing new says nothing again.
    _reconciled(config, "--full-read")
    _feed_missed_once(config)


def test_report_mode_holds_what_a_full_read_found(sims: list[Sim], config: Path) -> None:
    cs1 = sims[0]
    settings = config / "provgit.yaml"
    settings.write_text(settings.read_text() + "drift:\n  mode: report\n")
    _reconciled(config)
    _silent_edit(cs1, "Restored")
    ran = cli("reconcile", str(config))
    assert ran.code == 4, ran.out + ran.err  # drift held
    assert cs1.records()["cos"]["7"]["comment"] == "Restored"
    assert _element_status(config, "cs1")["status"] != "Sync Completed"
    with journal(config / ".provgit") as j:
        assert [(d.element, d.key) for d in j.drift_items()] == [("cs1", "7")]


def _age_full_reads(root: Path, hours: float) -> None:
    """As if the last full reads were `hours` ago (their stamps moved back)."""
    cache = ObservationCache(root / ".provgit")
    for path in cache.dir.glob("*.fullread.marshal"):
        at = marshal.loads(path.read_bytes())
        path.write_bytes(marshal.dumps(at - hours * 3600))


def test_a_full_read_is_due_after_full_read_hours(sims: list[Sim], config: Path) -> None:
    cs1 = sims[0]
    _edit_database(cs1, "Restored")
    _age_full_reads(config, 23)
    _reconciled(config)  # default 24 h: not due yet
    assert cs1.records()["cos"]["7"]["comment"] == "Restored"
    _age_full_reads(config, 2)
    _reconciled(config)
    assert cs1.records()["cos"]["7"]["comment"] == "Sales"


def test_status_says_when_each_element_was_last_read_in_full(sims: list[Sim], config: Path) -> None:
    before = _element_status(config, "cs1")["full_read_at"]
    assert isinstance(before, str)
    _age_full_reads(config, 3)
    aged = _element_status(config, "cs1")["full_read_at"]
    assert isinstance(aged, str) and aged < before
    text = cli("status", str(config)).out
    assert "verified in full 3 h ago" in text
