"""The `intents` and `outcomes` tables: every element write, before and after.

An intent is written (and fsynced) before the element write it announces is
sent; its outcome after the element answered. An intent without an outcome
is a write whose fate is unknown (the process died): the next run resolves
it by observing the element again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from provgit.journal.backend import Db
from provgit.journal.leases import LeaseLost
from provgit.journal.rows import Intent, LastWrite
from provgit.journal.store import Store

# (collection, key) -> (action, fields hash, revision): an acknowledged write.
AckedWrite = tuple[str, str | None, int]


def last_writes(db: Db) -> dict[str, tuple[int, int]]:
    """Per element, its newest write that gave a revision: (intent id, revision).

    Every element written to has a status row; the (element, id) index makes
    this one short index walk per element.
    """
    out: dict[str, tuple[int, int]] = {}
    for (name,) in db.execute("SELECT element FROM element_status").fetchall():
        row = db.execute(
            "SELECT i.id, o.revision FROM intents i JOIN outcomes o ON o.intent_id = i.id "
            "WHERE i.element = ? AND o.revision IS NOT NULL ORDER BY i.id DESC LIMIT 1",
            (name,),
        ).fetchone()
        if row is not None:
            out[name] = (int(row[0]), int(row[1]))
    return out


class Writes:
    def __init__(self, store: Store) -> None:
        self._store = store

    def record_intents(self, run_id: int, intents: Sequence[Intent]) -> list[int]:
        """Write intents; returns their ids in order. Commit (fsync) before writing!"""
        if not intents:
            return []
        now = time.time()
        with self._store.transaction():
            lost = self._store.lost((i.element for i in intents), "intent")
            if lost:
                raise LeaseLost(lost)
            if self._store.db.remote:
                return self._insert_intents_at_once(run_id, intents, now)
            return self._store.db.insert_ids(
                "INSERT INTO intents (run_id, element, collection, key, action, "
                "if_revision, fields_hash, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        i.element,
                        i.collection,
                        i.key,
                        i.action,
                        i.if_revision,
                        i.fields_hash,
                        now,
                    )
                    for i in intents
                ],
            )

    def _insert_intents_at_once(
        self, run_id: int, intents: Sequence[Intent], now: float
    ) -> list[int]:
        """On a server: one statement for the batch (one execution, not one per
        intent). The ids come from the identity sequence in the rows' order
        (ORDER BY n), so sorted they are the intents' ids in order."""
        rows = json.dumps(
            [
                [i.element, i.collection, i.key, i.action, i.if_revision, i.fields_hash]
                for i in intents
            ]
        )
        ids = self._store.db.execute(
            "INSERT INTO intents (run_id, element, collection, key, action, "
            "if_revision, fields_hash, time) "
            "SELECT ?, v->>0, v->>1, v->>2, v->>3, (v->>4)::bigint, v->>5, ? "
            "FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS x(v, n) ORDER BY n "
            "RETURNING id",
            (run_id, now, rows),
        ).fetchall()
        return sorted(int(r[0]) for r in ids)

    def record_outcomes(
        self,
        outcomes: Iterable[tuple[int, str, int | None, str | None, str | None]],
        element: str | None = None,
    ) -> None:
        """(intent id, outcome, revision, error type, message) rows (of
        `element`'s intents, when the caller knows: saves finding it out)."""
        now = time.time()
        rows = list(outcomes)
        with self._store.transaction():
            if self._store.fences is not None and rows:
                rows = self._held_outcomes(rows, element)
            if self._store.db.remote:
                if rows:  # one statement for them all (a server runs each it gets)
                    self._store.db.execute(
                        "INSERT INTO outcomes SELECT (v->>0)::bigint, v->>1, (v->>2)::bigint, "
                        "v->>3, v->>4, ? FROM jsonb_array_elements(?::jsonb) AS v "
                        "ON CONFLICT (intent_id) DO UPDATE SET outcome = excluded.outcome, "
                        "revision = excluded.revision, error_type = excluded.error_type, "
                        "message = excluded.message, time = excluded.time",
                        (now, json.dumps(rows)),
                    )
                return
            self._store.db.executemany(
                "INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (intent_id) "
                "DO UPDATE SET outcome = excluded.outcome, revision = excluded.revision, "
                "error_type = excluded.error_type, message = excluded.message, "
                "time = excluded.time",
                [(*o, now) for o in rows],
            )

    def _held_outcomes(
        self, rows: list[tuple[int, str, int | None, str | None, str | None]], element: str | None
    ) -> list[tuple[int, str, int | None, str | None, str | None]]:
        """The outcomes about elements still held: one whose element moved on
        leaves its intent open, for the new holder to settle by observing."""
        if element is not None:
            return [] if self._store.lost([element], "outcome") else rows
        of = dict(
            self._store.db.execute(
                # Fences are PostgreSQL's only (a list is an array there).
                "SELECT id, element FROM intents WHERE id = ANY(?)",
                ([r[0] for r in rows],),
            ).fetchall()
        )
        lost = self._store.lost(set(of.values()), "outcome")
        return [r for r in rows if of.get(r[0]) not in lost]

    def open_intents(self, element: str | None = None) -> list[Intent]:
        """Intents with no outcome: writes whose fate is unknown."""
        sql = (
            "SELECT i.element, i.collection, i.key, i.action, i.if_revision, i.fields_hash, "
            "i.id, i.run_id, i.time FROM intents i LEFT JOIN outcomes o ON o.intent_id = i.id "
            "WHERE o.intent_id IS NULL"
        )
        args: tuple[Any, ...] = ()
        if element is not None:
            sql += " AND i.element = ?"
            args = (element,)
        return [Intent(*row) for row in self._store.db.execute(sql + " ORDER BY i.id", args)]

    def resolve_open_intents(self, element: str, note: str) -> int:
        """Close the unknown intents of `element` (after it was observed again)."""
        open_ = self.open_intents(element)
        self.record_outcomes(((i.id, "resolved", None, None, note) for i in open_), element)
        return len(open_)

    def last_record_writes(
        self, element: str, refs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], LastWrite]:
        """For these (collection, key) records of `element`, provgit's newest write
        that may have changed it: one that landed, or whose fate is unknown.
        Writes the element refused (outcome "error") left the record as it was.
        Records provgit never wrote (or whose writes were pruned) are absent."""
        # The records go in as one JSON parameter: no temporary table to write.
        # First each record's newest write (one covering-index seek each)...
        wanted = json.dumps([list(ref) for ref in refs])
        db = self._store.db
        rows = db.execute(
            f"WITH {db.refs_cte} "
            "SELECT r.collection, r.key, i.action, o.outcome, o.revision FROM r "
            "JOIN intents i ON i.id = (SELECT MAX(id) FROM intents "
            "WHERE element = ? AND collection = r.collection AND key = r.key) "
            "LEFT JOIN outcomes o ON o.intent_id = i.id",
            (wanted, element),
        ).fetchall()
        refused = [[c, k] for c, k, _, o, _ in rows if o == "error"]
        rows = [row for row in rows if row[3] != "error"]
        if refused:
            # ...then, for the few the element refused last, the write before.
            rows += db.execute(
                f"WITH {db.refs_cte} SELECT r.collection, r.key, i.action, o.outcome, o.revision "
                "FROM r JOIN intents i ON i.id = (SELECT i2.id FROM intents i2 "
                "LEFT JOIN outcomes o2 ON o2.intent_id = i2.id "
                "WHERE i2.element = ? AND i2.collection = r.collection AND i2.key = r.key "
                "AND (o2.outcome IS NULL OR o2.outcome != 'error') "
                "ORDER BY i2.id DESC LIMIT 1) "
                "LEFT JOIN outcomes o ON o.intent_id = i.id",
                (json.dumps(refused), element),
            ).fetchall()
        return {(c, k): LastWrite(a, o, r) for c, k, a, o, r in rows}

    def last_revisions(self) -> dict[str, int]:
        """Per element, the last revision it answered a provgit write with."""
        return {name: revision for name, (_, revision) in last_writes(self._store.db).items()}

    def acknowledged_writes(
        self, element: str, refs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], AckedWrite]:
        """provgit's last acknowledged ("ok") write of each of these records of
        `element` (any age)."""
        wanted = json.dumps([f"{c}\x1f{k}" for c, k in refs])
        db = self._store.db
        rows = db.execute(
            "SELECT i.collection, i.key, i.action, i.fields_hash, o.revision "
            "FROM intents i JOIN outcomes o ON o.intent_id = i.id "
            "WHERE i.element = ? AND o.outcome = 'ok' "
            f"AND i.collection || {db.unit_sep} || i.key IN ({db.json_texts}) "
            "ORDER BY i.id",
            (element, wanted),
        ).fetchall()
        out: dict[tuple[str, str], AckedWrite] = {}
        for coll, key, action, digest, revision in rows:
            out[(coll, key)] = (action, digest, -1 if revision is None else int(revision))
        return out

    def acknowledged_writes_after(
        self, element: str, revision: int
    ) -> dict[tuple[str, str], AckedWrite]:
        """provgit's acknowledged writes to `element` that gave a revision newer
        than `revision` (an observation at `revision` does not show them yet)."""
        out: dict[tuple[str, str], AckedWrite] = {}
        for coll, key, action, digest, rev in self._store.db.execute(
            "SELECT i.collection, i.key, i.action, i.fields_hash, o.revision "
            "FROM intents i JOIN outcomes o ON o.intent_id = i.id "
            "WHERE i.element = ? AND o.outcome = 'ok' AND o.revision > ? ORDER BY i.id",
            (element, revision),
        ):
            out[(coll, key)] = (action, digest, int(rev))
        return out
