"""Sync status: `element_status` and `resource_status` (current, in the seeds'
words; a resource absent has never been out of sync) and `status_history`
(every change of either, oldest first)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from provgit.journal.rows import iso
from provgit.journal.store import Store


class Statuses:
    def __init__(self, store: Store) -> None:
        self._store = store

    def set_element_status(
        self, element: str, status: str, state: str, run_id: int | None, detail: str | None = None
    ) -> None:
        now = time.time()
        with self._store.transaction(), self._store.fenced(element, "status") as held:
            if not held:
                return
            row = self._store.db.execute(
                "SELECT status FROM element_status WHERE element = ?", (element,)
            ).fetchone()
            self._store.db.execute(
                "INSERT INTO element_status VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (element) "
                "DO UPDATE SET status = excluded.status, state = excluded.state, "
                "run_id = excluded.run_id, detail = excluded.detail, time = excluded.time",
                (element, status, state, run_id, detail, now),
            )
            if row is None or row[0] != status:
                self._store.db.execute(
                    "INSERT INTO status_history (scope, subject, status, run_id, time) "
                    "VALUES ('element', ?, ?, ?, ?)",
                    (element, status, run_id, now),
                )

    def element_statuses(self) -> dict[str, dict[str, Any]]:
        rows = self._store.db.execute(
            "SELECT element, status, state, run_id, detail, time FROM element_status"
        ).fetchall()
        return {
            r[0]: {
                "status": r[1],
                "state": r[2],
                "run_id": r[3],
                "detail": r[4],
                "time": iso(r[5]),
            }
            for r in rows
        }

    def element_states(self) -> dict[str, tuple[str, str | None, float]]:
        """Each element's state as the last run left it: (state, detail, time)."""
        return {
            name: (state, detail, float(t))
            for name, state, detail, t in self._store.db.execute(
                "SELECT element, state, detail, time FROM element_status"
            )
        }

    def set_resource_statuses(
        self,
        rows: Iterable[tuple[str, str, str, int, int]],
        run_id: int | None,
        history: bool = True,
    ) -> None:
        """(kind, resource, status, completed, total) rows; history records changes only."""
        now = time.time()
        with self._store.transaction():
            rows = list(rows)
            if history:
                before = {
                    (k, r): s
                    for k, r, s in self._store.db.execute(
                        "SELECT kind, resource, status FROM resource_status"
                    )
                }
                changed = [
                    (f"{k}/{r}", s, run_id, now)
                    for k, r, s, _, _ in rows
                    if before.get((k, r)) != s
                ]
                self._history(changed)
            if self._store.db.remote:
                self._upsert_at_once(rows, run_id, now)
                return
            self._store.db.executemany(
                "INSERT INTO resource_status VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, resource) DO UPDATE SET status = excluded.status, "
                "completed = excluded.completed, total = excluded.total, "
                "run_id = excluded.run_id, time = excluded.time",
                [(*r, run_id, now) for r in rows],
            )

    def _history(self, changed: list[tuple[str, str, int | None, float]]) -> None:
        db = self._store.db
        if not db.remote:
            db.executemany(
                "INSERT INTO status_history (scope, subject, status, run_id, time) "
                "VALUES ('resource', ?, ?, ?, ?)",
                changed,
            )
        elif changed:
            # On a server: one statement (10,000 resources are 10,000 executions
            # there otherwise), in the rows' order.
            db.execute(
                "INSERT INTO status_history (scope, subject, status, run_id, time) "
                "SELECT 'resource', v->>0, v->>1, (v->>2)::bigint, (v->>3)::float8 "
                "FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS x(v, n) ORDER BY n",
                (json.dumps(changed),),
            )

    def _upsert_at_once(
        self, rows: list[tuple[str, str, str, int, int]], run_id: int | None, now: float
    ) -> None:
        # One row per resource (as one upsert after another would leave it).
        last = {(r[0], r[1]): r for r in rows}
        if not last:
            return
        self._store.db.execute(
            "INSERT INTO resource_status SELECT v->>0, v->>1, v->>2, (v->>3)::bigint, "
            "(v->>4)::bigint, ?::bigint, ? FROM jsonb_array_elements(?::jsonb) AS v "
            "ON CONFLICT (kind, resource) DO UPDATE SET status = excluded.status, "
            "completed = excluded.completed, total = excluded.total, "
            "run_id = excluded.run_id, time = excluded.time",
            (run_id, now, json.dumps(list(last.values()))),
        )

    def resource_statuses(self, not_completed_only: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT kind, resource, status, completed, total, run_id, time FROM resource_status"
        if not_completed_only:
            sql += " WHERE status != 'Sync Completed'"
        names = ("kind", "resource", "status", "completed", "total", "run_id", "time")
        out = []
        for row in self._store.db.execute(sql + " ORDER BY kind, resource"):
            d = dict(zip(names, row, strict=True))
            d["time"] = iso(d["time"])
            out.append(d)
        return out

    def status_history(self, scope: str, subject: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._store.db.execute(
            "SELECT status, run_id, time FROM status_history WHERE scope = ? AND subject = ? "
            "ORDER BY id DESC LIMIT ?",
            (scope, subject, limit),
        ).fetchall()
        return [{"status": s, "run_id": r, "time": iso(t)} for s, r, t in reversed(rows)]
