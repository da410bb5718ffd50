"""The `events` table (the feed) and the alarm level kept in `meta`."""

from __future__ import annotations

import time

from provgit.journal.meta import Meta
from provgit.journal.rows import EVENT_TYPES, Event
from provgit.journal.store import Store

_COLUMNS = "id, time, type, element, resource, message, run_id"


class Events:
    def __init__(self, store: Store, meta: Meta) -> None:
        self._store = store
        self._meta = meta

    def add_event(
        self,
        type_: str,
        message: str,
        *,
        element: str | None = None,
        resource: str | None = None,
        run_id: int | None = None,
    ) -> int:
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}")
        with self._store.transaction():
            if element is not None and self._store.lost([element], f"{type_} event"):
                return 0
            row = self._store.db.execute(
                "INSERT INTO events (time, type, element, resource, message, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (time.time(), type_, element, resource, message, run_id),
            ).fetchone()
        return int(row[0])

    def events(self, since_id: int = 0, limit: int = 1000) -> list[Event]:
        rows = self._store.db.execute(
            f"SELECT {_COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (since_id, limit),
        ).fetchall()
        return [Event(*row) for row in rows]

    def recent_events(self, limit: int = 50) -> list[Event]:
        rows = self._store.db.execute(
            f"SELECT {_COLUMNS} FROM events ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [Event(*row) for row in reversed(rows)]

    def alarm_level(self) -> str | None:
        level = self._meta.get("alarm_level")
        return level or None

    def set_alarm_level(self, level: str | None) -> None:
        self._meta.set("alarm_level", level or "")
