"""What the status derivation reads from the journal (pending updates,
distribution errors, element rows, provgit's acknowledged writes), through a
read-only connection: a report runs beside writers.

`_connect_ro` is the one place the journal file is opened here.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from provgit.journal.db import DistributionError, PendingUpdate, last_writes
from provgit.report.states import Ref, Write


@dataclass
class JournalFacts:
    pending: dict[tuple[str, str, str], PendingUpdate]
    errors: dict[tuple[str, str, str], DistributionError]
    # element -> (state, detail, time) as the last run left it
    element_rows: dict[str, tuple[str, str | None, float]]
    # element -> (collection, key) -> provgit's last acknowledged write newer
    # than the element's observation
    writes_after: dict[str, dict[Ref, Write]]
    path: Path | None = None

    def last_writes(self, element: str, refs: Iterable[Ref]) -> dict[Ref, Write]:
        """provgit's last acknowledged write of each of these records (any age)."""
        wanted = list(dict.fromkeys(refs))
        if not wanted or self.path is None:
            return {}
        return _query_last_writes(self.path, element, wanted)


def _connect_ro(path: Path) -> sqlite3.Connection | None:
    if not path.exists():
        return None
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=15)
    except sqlite3.Error:
        return None


def _query_last_writes(path: Path, element: str, refs: list[Ref]) -> dict[Ref, Write]:
    db = _connect_ro(path)
    if db is None:
        return {}
    wanted = json.dumps([f"{c}\x1f{k}" for c, k in refs])
    out: dict[Ref, Write] = {}
    with contextlib.closing(db):
        try:
            rows = db.execute(
                "SELECT i.collection, i.key, i.action, i.fields_hash, o.revision "
                "FROM intents i JOIN outcomes o ON o.intent_id = i.id "
                "WHERE i.element = ? AND o.outcome = 'ok' "
                "AND i.collection || char(31) || i.key IN (SELECT value FROM json_each(?)) "
                "ORDER BY i.id",
                (element, wanted),
            ).fetchall()
        except sqlite3.Error:
            return {}
    for coll, key, action, digest, revision in rows:
        out[(coll, key)] = (action, digest, -1 if revision is None else int(revision))
    return out


def element_rows(journal_path: Path) -> dict[str, tuple[str, str | None, float]]:
    """Each element's state as the last run left it: (state, detail, time)."""
    db = _connect_ro(journal_path)
    if db is None:
        return {}
    with contextlib.closing(db):
        try:
            return {
                name: (state, detail, float(t))
                for name, state, detail, t in db.execute(
                    "SELECT element, state, detail, time FROM element_status"
                )
            }
        except sqlite3.Error:
            return {}


def journal_facts(journal_path: Path, observed_revisions: Mapping[str, int | None]) -> JournalFacts:
    """Everything the derivation needs from the journal, through a read-only
    connection (a report runs beside writers)."""
    facts = JournalFacts({}, {}, {}, {}, journal_path)
    db = _connect_ro(journal_path)
    if db is None:
        return facts
    from provgit.journal.db import _DE_COLUMNS, _de

    with contextlib.closing(db):
        try:
            for row in db.execute("SELECT * FROM pending"):
                p = PendingUpdate(*row)
                facts.pending[(p.element, p.collection, p.key)] = p
            for row in db.execute(f"SELECT {_DE_COLUMNS} FROM dist_errors"):
                de = _de(row)
                facts.errors[(de.element, de.collection, de.key)] = de
            for name, state, detail, t in db.execute(
                "SELECT element, state, detail, time FROM element_status"
            ):
                facts.element_rows[name] = (state, detail, t)
            for name, revision in observed_revisions.items():
                if revision is None:
                    continue
                # provgit's acknowledged writes the observation does not show yet.
                after: dict[Ref, Write] = {}
                for coll, key, action, digest, rev in db.execute(
                    "SELECT i.collection, i.key, i.action, i.fields_hash, o.revision "
                    "FROM intents i JOIN outcomes o ON o.intent_id = i.id "
                    "WHERE i.element = ? AND o.outcome = 'ok' AND o.revision > ? ORDER BY i.id",
                    (name, revision),
                ):
                    after[(coll, key)] = (action, digest, int(rev))
                if after:
                    facts.writes_after[name] = after
        except sqlite3.Error:
            pass
    return facts


def element_revisions(path: Path) -> dict[str, int]:
    """The last revision each element answered a provgit write with."""
    db = _connect_ro(path)
    if db is None:
        return {}
    try:
        with contextlib.closing(db):
            return {name: revision for name, (_, revision) in last_writes(db).items()}
    except sqlite3.Error:
        return {}
