"""The `dist_errors` table: SDS distribution errors, refusals and conflicts an
admin must retry, force or delete; one per (element, collection, key)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from provgit.journal.backend import delete_refs
from provgit.journal.rows import DE_COLUMNS, DistributionError, distribution_error
from provgit.journal.store import Store


class DistributionErrors:
    def __init__(self, store: Store) -> None:
        self._store = store

    def upsert_distribution_error(
        self,
        *,
        element: str,
        collection: str,
        key: str,
        form: str,
        kind: str,
        resource: str,
        action: str,
        error_type: str,
        reason: str,
        detail: dict[str, Any],
        fields_hash: str | None,
    ) -> int:
        """Record a refusal/conflict; a repeat of the same record keeps its action id."""
        now = time.time()
        with self._store.transaction(), self._store.fenced(element, "distribution error") as held:
            if not held:
                return 0
            self._store.db.execute(
                "INSERT INTO dist_errors (element, collection, key, form, kind, resource, action, "
                "error_type, reason, status, detail, fields_hash, time, last_retried, attempts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'idle', ?, ?, ?, ?, 1) "
                "ON CONFLICT (element, collection, key) DO UPDATE SET "
                "form = excluded.form, kind = excluded.kind, resource = excluded.resource, "
                "action = excluded.action, error_type = excluded.error_type, "
                "reason = excluded.reason, status = 'idle', detail = excluded.detail, "
                "fields_hash = excluded.fields_hash, last_retried = excluded.last_retried, "
                "attempts = dist_errors.attempts + 1",
                (
                    element,
                    collection,
                    key,
                    form,
                    kind,
                    resource,
                    action,
                    error_type,
                    reason,
                    json.dumps(detail, sort_keys=True, default=str),
                    fields_hash,
                    now,
                    now,
                ),
            )
            row = self._store.db.execute(
                "SELECT id FROM dist_errors WHERE element = ? AND collection = ? AND key = ?",
                (element, collection, key),
            ).fetchone()
        return int(row[0])

    def clear_distribution_errors(self, element: str, keys: Iterable[tuple[str, str]]) -> int:
        with self._store.transaction(), self._store.fenced(element, "distribution error") as held:
            if not held:
                return 0
            return delete_refs(self._store.db, "dist_errors", element, keys)

    def distribution_errors(
        self,
        *,
        element: str | None = None,
        form: str | None = None,
        error_type: str | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[DistributionError]:
        sql = f"SELECT {DE_COLUMNS} FROM dist_errors WHERE 1 = 1"
        args: list[Any] = []
        for column, value in (("element", element), ("form", form), ("error_type", error_type)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        if ids is not None:
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            args.extend(ids)
        rows = self._store.db.execute(sql + " ORDER BY id", args).fetchall()
        return [distribution_error(row) for row in rows]

    def distribution_error_count(self) -> int:
        return int(self._store.db.execute("SELECT count(*) FROM dist_errors").fetchone()[0])

    def delete_distribution_errors(self, ids: Sequence[int]) -> int:
        with self._store.transaction():
            cur = self._store.db.executemany(
                "DELETE FROM dist_errors WHERE id = ?", [(i,) for i in ids]
            )
            return int(cur.rowcount)

    def set_distribution_error_status(self, ids: Sequence[int], status: str) -> None:
        with self._store.transaction():
            self._store.db.executemany(
                "UPDATE dist_errors SET status = ? WHERE id = ?", [(status, i) for i in ids]
            )
