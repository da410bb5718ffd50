"""The `runs` table (one row per apply/reconcile/errors run: who, when, how it
ended) and pruning the history that hangs off runs."""

from __future__ import annotations

import json
import time
from typing import Any

from provgit.journal.meta import Meta
from provgit.journal.store import Store
from provgit.journal.writes import last_writes


class Runs:
    def __init__(self, store: Store, meta: Meta) -> None:
        self._store = store
        self._meta = meta

    def start_run(
        self,
        command: str,
        pid: int,
        host: str,
        plan_checksum: str | None = None,
        commit: str | None = None,
    ) -> int:
        with self._store.transaction():
            row = self._store.db.execute(
                "INSERT INTO runs (command, pid, host, started, plan_checksum, commit_id) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (command, pid, host, time.time(), plan_checksum, commit),
            ).fetchone()
        return int(row[0])

    def finish_run(self, run_id: int, outcome: str, summary: dict[str, Any]) -> None:
        with self._store.transaction():
            self._store.db.execute(
                "UPDATE runs SET finished = ?, outcome = ?, summary = ? WHERE id = ?",
                (time.time(), outcome, json.dumps(summary, sort_keys=True), run_id),
            )

    def prune(
        self, older_than_seconds: float, every_seconds: float = 3600.0, chunk: int = 20_000
    ) -> dict[str, int]:
        """Forget history older than `older_than_seconds`: runs (finished, or
        dead since), their settled intents and outcomes, events and status history.

        Never pruned: an intent without an outcome (a write of unknown fate),
        each element's newest write that gave a revision (reports show it),
        pending updates, distribution errors, current statuses and the newest
        run. Runs at most once per `every_seconds`, intents in chunks of
        `chunk` per transaction (a first prune of a long history must not
        hold the write lock for long), and returns what it removed (empty
        when it did not run). Call it outside any transaction.
        """
        now = time.time()
        last = self._meta.get("pruned_at")
        if last is not None and now - float(last) < every_seconds:
            return {}
        cutoff = now - older_than_seconds
        db = self._store.db
        newest = db.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0]
        old_runs = "SELECT id FROM runs WHERE COALESCE(finished, started) < ? AND id < ?"
        keep = set(self._last_revision_intents().values())
        intents = 0
        after = 0
        while True:
            with self._store.transaction():
                found = [
                    r[0]
                    for r in db.execute(
                        "SELECT i.id FROM intents i JOIN outcomes o ON o.intent_id = i.id "
                        f"WHERE i.id > ? AND i.run_id IN ({old_runs}) ORDER BY i.id LIMIT ?",
                        (after, cutoff, newest, chunk),
                    )
                ]
                gone = [(i,) for i in found if i not in keep]
                db.executemany("DELETE FROM outcomes WHERE intent_id = ?", gone)
                db.executemany("DELETE FROM intents WHERE id = ?", gone)
                intents += len(gone)
            if len(found) < chunk:
                break
            after = found[-1]
        with self._store.transaction():
            runs = db.execute(
                f"DELETE FROM runs WHERE id IN ({old_runs}) "
                "AND NOT EXISTS (SELECT 1 FROM intents i WHERE i.run_id = runs.id)",
                (cutoff, newest),
            ).rowcount
            events = db.execute("DELETE FROM events WHERE time < ?", (cutoff,)).rowcount
            history = db.execute("DELETE FROM status_history WHERE time < ?", (cutoff,)).rowcount
            self._meta.put("pruned_at", repr(now))
        return {
            "runs": runs,
            "intents": intents,
            "outcomes": intents,
            "events": events,
            "status_history": history,
        }

    def _last_revision_intents(self) -> dict[str, int]:
        return {name: intent for name, (intent, _) in last_writes(self._store.db).items()}

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._store.db.execute(
            "SELECT id, command, pid, host, started, finished, plan_checksum, commit_id, "
            "outcome, summary FROM runs ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        names = [
            "id",
            "command",
            "pid",
            "host",
            "started",
            "finished",
            "plan_checksum",
            "commit",
            "outcome",
            "summary",
        ]
        out = []
        for row in rows:
            d = dict(zip(names, row, strict=True))
            d["summary"] = json.loads(d["summary"]) if d["summary"] else None
            out.append(d)
        return out

    def unfinished_runs(self) -> list[dict[str, Any]]:
        """Runs with no finish, oldest first: running now, or dead (SIGKILL, power loss)."""
        rows = self._store.db.execute(
            "SELECT id, command, pid, host, started FROM runs WHERE finished IS NULL ORDER BY id"
        ).fetchall()
        names = ("id", "command", "pid", "host", "started")
        return [dict(zip(names, row, strict=True)) for row in rows]
