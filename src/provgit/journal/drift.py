"""The `drift` table (schema 2): open drift items, records found changed
outside provgit, one per (element, collection, key), with the names of the
fields that differ (never values), until corrected, overwritten, or equal to
the config again."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from provgit.journal.rows import DRIFT_COLUMNS, DriftItem, drift_item
from provgit.journal.store import Store


class DriftItems:
    def __init__(self, store: Store) -> None:
        self._store = store

    def upsert_drift(self, items: Iterable[DriftItem]) -> list[DriftItem]:
        """Record drift found now; returns the items that were not open before
        (a record already known keeps its first_seen and state)."""
        new: list[DriftItem] = []
        with self._store.transaction():
            for d in items:
                cur = self._store.db.execute(
                    "UPDATE drift SET kind = ?, resource = ?, change = ?, fields = ?, "
                    "revision = ?, last_seen = ? WHERE element = ? AND collection = ? AND key = ?",
                    (
                        d.kind,
                        d.resource,
                        d.change,
                        json.dumps(list(d.fields)),
                        d.revision,
                        d.last_seen,
                        d.element,
                        d.collection,
                        d.key,
                    ),
                )
                if cur.rowcount:
                    continue
                self._store.db.execute(
                    f"INSERT INTO drift ({DRIFT_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                    (
                        d.element,
                        d.collection,
                        d.key,
                        d.kind,
                        d.resource,
                        d.change,
                        json.dumps(list(d.fields)),
                        d.revision,
                        d.state,
                        d.note,
                        d.first_seen,
                        d.last_seen,
                    ),
                )
                new.append(d)
        return new

    def clear_drift(self, element: str, keys: Iterable[tuple[str, str]]) -> list[DriftItem]:
        """Close these drift items of `element`; returns those that were open."""
        keys = list(keys)
        with self._store.transaction():
            gone = [
                drift_item(row)
                for c, k in keys
                for row in self._store.db.execute(
                    f"SELECT {DRIFT_COLUMNS} FROM drift "
                    "WHERE element = ? AND collection = ? AND key = ?",
                    (element, c, k),
                )
            ]
            self._store.db.executemany(
                "DELETE FROM drift WHERE element = ? AND collection = ? AND key = ?",
                [(element, c, k) for c, k in keys],
            )
        return gone

    def capture_drift(self, elements: Iterable[str], note: str) -> list[DriftItem]:
        """Mark the drift items of `elements` as captured (`import --drift`), naming
        where (`note`, the branch); returns them."""
        names = list(elements)
        with self._store.transaction():
            self._store.db.executemany(
                # A rejected item waits for the run that corrects it: not proposed again.
                "UPDATE drift SET state = 'captured', note = ? "
                "WHERE element = ? AND state != 'rejected'",
                [(note, n) for n in names],
            )
            return [d for d in self.drift_items() if d.element in names]

    def reject_drift(self, note: str) -> list[DriftItem]:
        """The branch `note` was closed unmerged: its captured items become
        "rejected" (the config wins, the next run overwrites them); returns them."""
        with self._store.transaction():
            self._store.db.execute(
                "UPDATE drift SET state = 'rejected' WHERE state = 'captured' AND note = ?",
                (note,),
            )
            return [d for d in self.drift_items() if d.state == "rejected" and d.note == note]

    def drift_items(self, element: str | None = None) -> list[DriftItem]:
        """Drift items, read only, ordered by element, collection, key: every record
        found changed outside provgit that is neither corrected, overwritten nor
        equal to the config again. `state` "captured": `import --drift` put it on
        a branch (still held until merged or overwritten); "rejected": that branch
        was closed unmerged, the next run overwrites the record."""
        sql = f"SELECT {DRIFT_COLUMNS} FROM drift"
        args: tuple[Any, ...] = ()
        if element is not None:
            sql += " WHERE element = ?"
            args = (element,)
        rows = self._store.db.execute(sql + " ORDER BY element, collection, key", args).fetchall()
        return [drift_item(row) for row in rows]
