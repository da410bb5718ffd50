"""The `suspensions` table (schema 3): who suspended writes to an element (or,
with element NETWORK, the whole network), why and since when; a row is
removed on resume."""

from __future__ import annotations

from provgit.journal.events import Events
from provgit.journal.rows import Suspension, iso
from provgit.journal.store import Store
from provgit.wire.codec import element_text


class Suspensions:
    def __init__(self, store: Store, events: Events) -> None:
        self._store = store
        self._events = events

    def suspend(self, element: str, reason: str, who: str, now: float) -> Suspension:
        """Suspend writes to `element` (NETWORK: all); an existing one keeps its
        start and takes the new reason. An event records it.

        The reason and who are kept as one bounded line, control and invisible
        characters shown as U+XXXX (`element_text`): they are typed by whoever
        holds the watcher's token (POST /suspend) or a shell, and are printed
        in every `provgit status` on an admin's terminal, where an escape
        sequence can clear the screen, retitle the window, write the clipboard
        or draw a fake "Sync Completed" over the line."""
        reason, who = element_text(reason), element_text(who)
        with self._store.transaction():
            self._store.db.execute(
                "INSERT INTO suspensions VALUES (?, ?, ?, ?) ON CONFLICT (element) "
                "DO UPDATE SET reason = excluded.reason, who = excluded.who",
                (element, reason, who, now),
            )
            s = self.suspensions()[element]
            what = element or "the network"
            self._events.add_event(
                "suspended",
                f"{what}: writes suspended by {who}: {reason}; changes wait as pending updates",
                element=element or None,
            )
        return s

    def resume(self, element: str, who: str) -> Suspension | None:
        """Lift the suspension of `element` (NETWORK: the network-wide one)."""
        who = element_text(who)
        with self._store.transaction():
            s = self.suspensions().get(element)
            if s is None:
                return None
            self._store.db.execute("DELETE FROM suspensions WHERE element = ?", (element,))
            what = element or "the network"
            self._events.add_event(
                "resumed",
                f"{what}: writes resumed by {who} (suspended since {iso(s.since)}: "
                f"{s.reason}); held changes go out on the next run",
                element=element or None,
            )
        return s

    def suspensions(self) -> dict[str, Suspension]:
        rows = self._store.db.execute(
            "SELECT element, reason, who, since FROM suspensions ORDER BY element"
        ).fetchall()
        return {r[0]: Suspension(*r) for r in rows}
