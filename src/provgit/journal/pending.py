"""The `pending` table: updates that could not be delivered (element offline,
locked, transport error, a suspension or a sync window), with attempts, the
next retry time and the last error."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from provgit.journal.backend import delete_refs
from provgit.journal.rows import PendingUpdate
from provgit.journal.store import Store


class PendingUpdates:
    def __init__(self, store: Store) -> None:
        self._store = store

    def upsert_pending(
        self,
        element: str,
        collection: str,
        key: str,
        action: str,
        kind: str,
        resource: str,
        error: str,
        next_retry: float,
        first: float | None = None,
    ) -> None:
        """Record (or count one more attempt of) a pending update. `first`:
        when a new one started waiting (default now; a hold passes its clock's)."""
        now = time.time()
        with self._store.transaction(), self._store.fenced(element, "pending update") as held:
            if not held:
                return
            self._store.db.execute(
                "INSERT INTO pending VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?) "
                "ON CONFLICT (element, collection, key) DO UPDATE SET "
                "action = excluded.action, attempts = pending.attempts + 1, "
                "last_attempt = excluded.last_attempt, next_retry = excluded.next_retry, "
                "last_error = excluded.last_error",
                (
                    element,
                    collection,
                    key,
                    action,
                    kind,
                    resource,
                    now if first is None else first,
                    now,
                    next_retry,
                    error,
                ),
            )

    def clear_pending(self, element: str, keys: Iterable[tuple[str, str]] | None = None) -> int:
        """Forget pending updates of `element` (all of them when `keys` is None)."""
        with self._store.transaction(), self._store.fenced(element, "pending update") as held:
            if not held:
                return 0
            if keys is None:
                cur = self._store.db.execute("DELETE FROM pending WHERE element = ?", (element,))
                return int(cur.rowcount)
            return delete_refs(self._store.db, "pending", element, keys)

    def pending(self, element: str | None = None) -> list[PendingUpdate]:
        sql = "SELECT * FROM pending"
        args: tuple[Any, ...] = ()
        if element is not None:
            sql += " WHERE element = ?"
            args = (element,)
        rows = self._store.db.execute(sql + " ORDER BY element, collection, key", args).fetchall()
        return [PendingUpdate(*row) for row in rows]

    def pending_count(self) -> int:
        return int(self._store.db.execute("SELECT count(*) FROM pending").fetchone()[0])
