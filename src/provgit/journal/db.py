"""The journal database.

Tables (schema version in `meta`):
  meta            k/v: schema_version, alarm_level
  runs            one row per apply/reconcile/errors run: who, when, how it ended
  intents         written (and fsynced) before an element write is sent
  outcomes        written after the element answered; an intent without an
                  outcome is a write whose fate is unknown (the process died):
                  the next run resolves it by observing the element again
  pending         updates that could not be delivered (offline, locked,
                  transport): attempts, next retry time, last error
  dist_errors     SDS distribution errors: refusals and conflicts an admin
                  must retry, force or delete; one per (element, collection, key)
  element_status  current sync status per element, in the seeds' words
  resource_status current sync status per resource (kind, key) that provgit
                  touched; a resource absent here has never been out of sync
  status_history  every status change of both, oldest first
  events          the feed: sync completed/failed, alarm raised/cleared, drift;
                  `id` is stable (AUTOINCREMENT never reuses one)
  drift           (schema 2) open drift items: records found changed outside
                  provgit, one per (element, collection, key), with the names
                  of the fields that differ (never values), until corrected,
                  overwritten, or equal to the config again
  suspensions     (schema 3) who suspended writes to an element (or, with
                  element '', the whole network), why and since when; a row
                  is removed on resume

Every method commits on its own unless called inside `transaction()`, which
groups them into one commit (one fsync), so a batch of 200 writes costs two
fsyncs, not 400.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provgit.fsutil import private_sqlite

# 2: the drift table and the intents_record index (added in place to a 1).
# 3: the suspensions table (added in place to a 1 or 2).
SCHEMA_VERSION = 3
FILENAME = "journal.sqlite"
EVENT_TYPES = (
    "sync_completed",
    "sync_failed",
    "alarm_raised",
    "alarm_cleared",
    "drift",
    "refused",  # apply refused for safety (stale plan, threshold, lock, queue cap)
    "config_refused",  # the watcher refused an invalid config; the last good one stays
    "interrupted",  # a run stopped by a signal, or found dead (no finish), by the next run
    "element_down",  # an element found down (stopped, offline, token refused, ...)
    "element_up",  # an element that was down answers again
    "resource_removed",  # a resource deleted from every element it was on
    "element_removed",  # an element left the config: its queued writes and errors dropped
    "removal_held",  # watch: records gone from the files wait for a confirming read
    "removal_withdrawn",  # watch: they came back before it; nothing was deleted
    "suspended",  # writes to an element (or the network) suspended by a person
    "resumed",  # a suspension lifted; the held work goes out on the next run
    "window_held",  # a sync window held a run's changes as pending updates
    "window_override",  # apply --override-window went through a closed window
)
# The element name a network-wide suspension is kept under.
NETWORK = ""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, command TEXT NOT NULL, pid INTEGER NOT NULL,
  host TEXT NOT NULL, started REAL NOT NULL, finished REAL, plan_checksum TEXT,
  commit_id TEXT, outcome TEXT, summary TEXT);
CREATE TABLE IF NOT EXISTS intents (
  id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, element TEXT NOT NULL,
  collection TEXT NOT NULL, key TEXT NOT NULL, action TEXT NOT NULL,
  if_revision INTEGER, fields_hash TEXT, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS intents_element ON intents (element, id);
CREATE INDEX IF NOT EXISTS intents_run ON intents (run_id);
CREATE TABLE IF NOT EXISTS outcomes (
  intent_id INTEGER PRIMARY KEY, outcome TEXT NOT NULL, revision INTEGER,
  error_type TEXT, message TEXT, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pending (
  element TEXT NOT NULL, collection TEXT NOT NULL, key TEXT NOT NULL,
  action TEXT NOT NULL, kind TEXT NOT NULL, resource TEXT NOT NULL,
  attempts INTEGER NOT NULL, first_failed REAL NOT NULL, last_attempt REAL NOT NULL,
  next_retry REAL NOT NULL, last_error TEXT NOT NULL,
  PRIMARY KEY (element, collection, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dist_errors (
  id INTEGER PRIMARY KEY AUTOINCREMENT, element TEXT NOT NULL, collection TEXT NOT NULL,
  key TEXT NOT NULL, form TEXT NOT NULL, kind TEXT NOT NULL, resource TEXT NOT NULL,
  action TEXT NOT NULL, error_type TEXT NOT NULL, reason TEXT NOT NULL,
  status TEXT NOT NULL, detail TEXT NOT NULL, fields_hash TEXT,
  time REAL NOT NULL, last_retried REAL NOT NULL, attempts INTEGER NOT NULL,
  UNIQUE (element, collection, key));
CREATE TABLE IF NOT EXISTS element_status (
  element TEXT PRIMARY KEY, status TEXT NOT NULL, state TEXT NOT NULL,
  run_id INTEGER, detail TEXT, time REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS resource_status (
  kind TEXT NOT NULL, resource TEXT NOT NULL, status TEXT NOT NULL,
  completed INTEGER NOT NULL, total INTEGER NOT NULL, run_id INTEGER, time REAL NOT NULL,
  PRIMARY KEY (kind, resource)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS status_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT, scope TEXT NOT NULL, subject TEXT NOT NULL,
  status TEXT NOT NULL, run_id INTEGER, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS status_history_subject ON status_history (scope, subject, id);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, type TEXT NOT NULL,
  element TEXT, resource TEXT, message TEXT NOT NULL, run_id INTEGER);
CREATE INDEX IF NOT EXISTS intents_record ON intents (element, collection, key, id);
CREATE TABLE IF NOT EXISTS drift (
  element TEXT NOT NULL, collection TEXT NOT NULL, key TEXT NOT NULL,
  kind TEXT NOT NULL, resource TEXT NOT NULL, change TEXT NOT NULL, fields TEXT NOT NULL,
  revision INTEGER, state TEXT NOT NULL, note TEXT,
  first_seen REAL NOT NULL, last_seen REAL NOT NULL,
  PRIMARY KEY (element, collection, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS suspensions (
  element TEXT PRIMARY KEY, reason TEXT NOT NULL, who TEXT NOT NULL,
  since REAL NOT NULL) WITHOUT ROWID;
"""


def last_writes(db: sqlite3.Connection) -> dict[str, tuple[int, int]]:
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


@dataclass(frozen=True)
class Suspension:
    """Writes to `element` (NETWORK: every element) held since `since`."""

    element: str
    reason: str
    who: str
    since: float

    @property
    def network(self) -> bool:
        return self.element == NETWORK

    def describe(self) -> str:
        """The status words: "Suspended: <reason> (since <time>, by <who>)"."""
        return f"Suspended: {self.reason} (since {_iso(self.since)}, by {self.who})"

    def to_json(self) -> dict[str, Any]:
        return {
            "element": self.element or None,
            "reason": self.reason,
            "who": self.who,
            "since": _iso(self.since),
        }


class JournalError(Exception):
    """The journal cannot be opened or is from a newer provgit."""


def fields_hash(action: str, fields: Any) -> str:
    """A stable digest of what a write would put (secrets appear as fingerprints only)."""
    body = json.dumps([action, fields], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Intent:
    element: str
    collection: str
    key: str
    action: str
    if_revision: int | None = None
    fields_hash: str | None = None
    id: int = 0
    run_id: int = 0
    time: float = 0.0


@dataclass(frozen=True)
class PendingUpdate:
    element: str
    collection: str
    key: str
    action: str
    kind: str
    resource: str
    attempts: int
    first_failed: float
    last_attempt: float
    next_retry: float
    last_error: str

    def to_json(self) -> dict[str, Any]:
        return {
            "element": self.element,
            "collection": self.collection,
            "key": self.key,
            "action": self.action,
            "kind": self.kind,
            "resource": self.resource,
            "attempts": self.attempts,
            "first_failed": _iso(self.first_failed),
            "last_attempt": _iso(self.last_attempt),
            "next_retry": _iso(self.next_retry),
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class DistributionError:
    """One SDS distribution error."""

    id: int  # the action id
    element: str  # destination element
    collection: str
    key: str
    form: str
    kind: str
    resource: str
    action: str  # add / modify / delete
    error_type: str
    reason: str
    status: str  # "idle" or "retry pending"
    detail: dict[str, Any]  # the first fields of the record, redacted
    fields_hash: str | None
    time: float
    last_retried: float
    attempts: int

    def to_json(self) -> dict[str, Any]:
        return {
            "action_id": self.id,
            "element": self.element,
            "time": _iso(self.time),
            "last_retried": _iso(self.last_retried),
            "action": self.action,
            "form": self.form,
            "collection": self.collection,
            "key": self.key,
            "kind": self.kind,
            "resource": self.resource,
            "error_type": self.error_type,
            "reason": self.reason,
            "status": self.status,
            "attempts": self.attempts,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Event:
    id: int
    time: float
    type: str
    element: str | None
    resource: str | None
    message: str
    run_id: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": _iso(self.time),
            "type": self.type,
            "element": self.element,
            "resource": self.resource,
            "message": self.message,
            "run_id": self.run_id,
        }


@dataclass(frozen=True)
class LastWrite:
    """provgit's newest write to one record that may have changed it."""

    action: str  # add / modify / delete
    outcome: str | None  # "ok", "resolved" (fate unknown, settled later) or None (open)
    revision: int | None  # the record's revision it produced (ok only)


@dataclass(frozen=True)
class DriftItem:
    """One record found changed outside provgit (see `Journal.drift_items`)."""

    element: str
    collection: str
    key: str
    kind: str  # the resource it comes from
    resource: str
    change: str  # "changed", "missing" (deleted outside provgit), "unexpected" (re-created)
    fields: tuple[str, ...]  # names of the fields that differ from the config; never values
    revision: int | None  # the record's revision when last found (None: absent)
    state: str  # "open", or "captured" (by `import --drift`, on the branch in `note`)
    note: str | None
    first_seen: float
    last_seen: float

    def to_json(self) -> dict[str, Any]:
        return {
            "element": self.element,
            "collection": self.collection,
            "key": self.key,
            "kind": self.kind,
            "resource": self.resource,
            "change": self.change,
            "fields": list(self.fields),
            "state": self.state,
            "note": self.note,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
        }


# (collection, key) rows from a JSON array of pairs (one statement parameter).
_REFS = (
    "r (collection, key) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') "
    "FROM json_each(?))"
)
_DRIFT_COLUMNS = (
    "element, collection, key, kind, resource, change, fields, revision, state, note, "
    "first_seen, last_seen"
)


def _drift_item(row: Sequence[Any]) -> DriftItem:
    return DriftItem(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        tuple(json.loads(row[6])),
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
    )


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


_DE_COLUMNS = (
    "id, element, collection, key, form, kind, resource, action, error_type, reason, "
    "status, detail, fields_hash, time, last_retried, attempts"
)


def _de(row: Sequence[Any]) -> DistributionError:
    (id_, element, collection, key, form, kind, resource, action, etype, reason, status) = row[:11]
    return DistributionError(
        id_,
        element,
        collection,
        key,
        form,
        kind,
        resource,
        action,
        etype,
        reason,
        status,
        json.loads(row[11]),
        row[12],
        row[13],
        row[14],
        row[15],
    )


class Journal:
    """The journal of one state directory. One instance per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            private_sqlite(self.path)  # records element data: owner-only
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed intent survives power loss, not just a crash.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=15000")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise JournalError(f"cannot open the journal {self.path}: {e}") from None
        self._depth = 0
        with self.transaction():
            row = self._db.execute("SELECT v FROM meta WHERE k = 'schema_version'").fetchone()
            if row is None or int(row[0]) < SCHEMA_VERSION:
                # Older schemas only lack tables and indexes, which the
                # CREATE … IF NOT EXISTS above has just added.
                self._set_meta("schema_version", str(SCHEMA_VERSION))
            elif int(row[0]) > SCHEMA_VERSION:
                raise JournalError(
                    f"the journal {self.path} is from a newer provgit (schema {row[0]}, "
                    f"this one knows {SCHEMA_VERSION}); upgrade provgit"
                )

    @classmethod
    def open(cls, state_dir: str | Path) -> Journal:
        return cls(Path(state_dir) / FILENAME)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing --------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group calls into one commit; nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._db.execute("ROLLBACK")
            raise
        self._depth = 0
        self._db.execute("COMMIT")

    def _set_meta(self, k: str, v: str) -> None:
        self._db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", (k, v)
        )

    def meta(self, k: str) -> str | None:
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, k: str, v: str) -> None:
        with self.transaction():
            self._set_meta(k, v)

    # ---- runs ------------------------------------------------------------

    def start_run(
        self,
        command: str,
        pid: int,
        host: str,
        plan_checksum: str | None = None,
        commit: str | None = None,
    ) -> int:
        with self.transaction():
            cur = self._db.execute(
                "INSERT INTO runs (command, pid, host, started, plan_checksum, commit_id) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (command, pid, host, time.time(), plan_checksum, commit),
            )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, outcome: str, summary: dict[str, Any]) -> None:
        with self.transaction():
            self._db.execute(
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
        last = self.meta("pruned_at")
        if last is not None and now - float(last) < every_seconds:
            return {}
        cutoff = now - older_than_seconds
        db = self._db
        newest = db.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0]
        old_runs = "SELECT id FROM runs WHERE COALESCE(finished, started) < ? AND id < ?"
        keep = set(self._last_revision_intents().values())
        intents = 0
        after = 0
        while True:
            with self.transaction():
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
        with self.transaction():
            runs = db.execute(
                f"DELETE FROM runs WHERE id IN ({old_runs}) "
                "AND NOT EXISTS (SELECT 1 FROM intents i WHERE i.run_id = runs.id)",
                (cutoff, newest),
            ).rowcount
            events = db.execute("DELETE FROM events WHERE time < ?", (cutoff,)).rowcount
            history = db.execute("DELETE FROM status_history WHERE time < ?", (cutoff,)).rowcount
            self._set_meta("pruned_at", repr(now))
        return {
            "runs": runs,
            "intents": intents,
            "outcomes": intents,
            "events": events,
            "status_history": history,
        }

    def _last_revision_intents(self) -> dict[str, int]:
        return {name: intent for name, (intent, _) in last_writes(self._db).items()}

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._db.execute(
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
        rows = self._db.execute(
            "SELECT id, command, pid, host, started FROM runs WHERE finished IS NULL ORDER BY id"
        ).fetchall()
        names = ("id", "command", "pid", "host", "started")
        return [dict(zip(names, row, strict=True)) for row in rows]

    # ---- intents and outcomes ----------------------------------------------

    def record_intents(self, run_id: int, intents: Sequence[Intent]) -> list[int]:
        """Write intents; returns their ids in order. Commit (fsync) before writing!"""
        if not intents:
            return []
        now = time.time()
        with self.transaction():
            self._db.executemany(
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
            # Inside one write transaction nobody else inserts: the ids are consecutive.
            last = int(self._db.execute("SELECT last_insert_rowid()").fetchone()[0])
        return list(range(last - len(intents) + 1, last + 1))

    @contextmanager
    def relaxed(self) -> Iterator[None]:
        """Commits inside skip the fsync (WAL stays atomic; a crash may lose them).

        For outcomes: one lost in a crash leaves an open intent, which the next
        run settles by observing the element again, so it need not cost a fsync.
        """
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    def record_outcomes(
        self, outcomes: Iterable[tuple[int, str, int | None, str | None, str | None]]
    ) -> None:
        """(intent id, outcome, revision, error type, message) rows."""
        now = time.time()
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?, ?)",
                [(*o, now) for o in outcomes],
            )

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
        return [Intent(*row) for row in self._db.execute(sql + " ORDER BY i.id", args)]

    def resolve_open_intents(self, element: str, note: str) -> int:
        """Close the unknown intents of `element` (after it was observed again)."""
        open_ = self.open_intents(element)
        self.record_outcomes((i.id, "resolved", None, None, note) for i in open_)
        return len(open_)

    # ---- pending updates ---------------------------------------------------

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
    ) -> None:
        now = time.time()
        with self.transaction():
            self._db.execute(
                "INSERT INTO pending VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?) "
                "ON CONFLICT (element, collection, key) DO UPDATE SET "
                "action = excluded.action, attempts = attempts + 1, "
                "last_attempt = excluded.last_attempt, next_retry = excluded.next_retry, "
                "last_error = excluded.last_error",
                (element, collection, key, action, kind, resource, now, now, next_retry, error),
            )

    def clear_pending(self, element: str, keys: Iterable[tuple[str, str]] | None = None) -> int:
        """Forget pending updates of `element` (all of them when `keys` is None)."""
        with self.transaction():
            if keys is None:
                cur = self._db.execute("DELETE FROM pending WHERE element = ?", (element,))
                return cur.rowcount
            cur = self._db.executemany(
                "DELETE FROM pending WHERE element = ? AND collection = ? AND key = ?",
                [(element, c, k) for c, k in keys],
            )
            return cur.rowcount

    def pending(self, element: str | None = None) -> list[PendingUpdate]:
        sql = "SELECT * FROM pending"
        args: tuple[Any, ...] = ()
        if element is not None:
            sql += " WHERE element = ?"
            args = (element,)
        rows = self._db.execute(sql + " ORDER BY element, collection, key", args).fetchall()
        return [PendingUpdate(*row) for row in rows]

    def pending_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM pending").fetchone()[0])

    # ---- distribution errors -------------------------------------------------

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
        with self.transaction():
            self._db.execute(
                "INSERT INTO dist_errors (element, collection, key, form, kind, resource, action, "
                "error_type, reason, status, detail, fields_hash, time, last_retried, attempts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'idle', ?, ?, ?, ?, 1) "
                "ON CONFLICT (element, collection, key) DO UPDATE SET "
                "form = excluded.form, kind = excluded.kind, resource = excluded.resource, "
                "action = excluded.action, error_type = excluded.error_type, "
                "reason = excluded.reason, status = 'idle', detail = excluded.detail, "
                "fields_hash = excluded.fields_hash, last_retried = excluded.last_retried, "
                "attempts = attempts + 1",
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
            row = self._db.execute(
                "SELECT id FROM dist_errors WHERE element = ? AND collection = ? AND key = ?",
                (element, collection, key),
            ).fetchone()
        return int(row[0])

    def clear_distribution_errors(self, element: str, keys: Iterable[tuple[str, str]]) -> int:
        with self.transaction():
            cur = self._db.executemany(
                "DELETE FROM dist_errors WHERE element = ? AND collection = ? AND key = ?",
                [(element, c, k) for c, k in keys],
            )
            return cur.rowcount

    def distribution_errors(
        self,
        *,
        element: str | None = None,
        form: str | None = None,
        error_type: str | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[DistributionError]:
        sql = f"SELECT {_DE_COLUMNS} FROM dist_errors WHERE 1 = 1"
        args: list[Any] = []
        for column, value in (("element", element), ("form", form), ("error_type", error_type)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        if ids is not None:
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            args.extend(ids)
        rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [_de(row) for row in rows]

    def distribution_error_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM dist_errors").fetchone()[0])

    def delete_distribution_errors(self, ids: Sequence[int]) -> int:
        with self.transaction():
            cur = self._db.executemany("DELETE FROM dist_errors WHERE id = ?", [(i,) for i in ids])
            return cur.rowcount

    def set_distribution_error_status(self, ids: Sequence[int], status: str) -> None:
        with self.transaction():
            self._db.executemany(
                "UPDATE dist_errors SET status = ? WHERE id = ?", [(status, i) for i in ids]
            )

    # ---- sync status ---------------------------------------------------------

    def set_element_status(
        self, element: str, status: str, state: str, run_id: int | None, detail: str | None = None
    ) -> None:
        now = time.time()
        with self.transaction():
            row = self._db.execute(
                "SELECT status FROM element_status WHERE element = ?", (element,)
            ).fetchone()
            self._db.execute(
                "INSERT OR REPLACE INTO element_status VALUES (?, ?, ?, ?, ?, ?)",
                (element, status, state, run_id, detail, now),
            )
            if row is None or row[0] != status:
                self._db.execute(
                    "INSERT INTO status_history (scope, subject, status, run_id, time) "
                    "VALUES ('element', ?, ?, ?, ?)",
                    (element, status, run_id, now),
                )

    def element_statuses(self) -> dict[str, dict[str, Any]]:
        rows = self._db.execute(
            "SELECT element, status, state, run_id, detail, time FROM element_status"
        ).fetchall()
        return {
            r[0]: {
                "status": r[1],
                "state": r[2],
                "run_id": r[3],
                "detail": r[4],
                "time": _iso(r[5]),
            }
            for r in rows
        }

    def set_resource_statuses(
        self,
        rows: Iterable[tuple[str, str, str, int, int]],
        run_id: int | None,
        history: bool = True,
    ) -> None:
        """(kind, resource, status, completed, total) rows; history records changes only."""
        now = time.time()
        with self.transaction():
            rows = list(rows)
            if history:
                before = {
                    (k, r): s
                    for k, r, s in self._db.execute(
                        "SELECT kind, resource, status FROM resource_status"
                    )
                }
                changed = [
                    (f"{k}/{r}", s, run_id, now)
                    for k, r, s, _, _ in rows
                    if before.get((k, r)) != s
                ]
                self._db.executemany(
                    "INSERT INTO status_history (scope, subject, status, run_id, time) "
                    "VALUES ('resource', ?, ?, ?, ?)",
                    changed,
                )
            self._db.executemany(
                "INSERT OR REPLACE INTO resource_status VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*r, run_id, now) for r in rows],
            )

    def resource_statuses(self, not_completed_only: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT kind, resource, status, completed, total, run_id, time FROM resource_status"
        if not_completed_only:
            sql += " WHERE status != 'Sync Completed'"
        names = ("kind", "resource", "status", "completed", "total", "run_id", "time")
        out = []
        for row in self._db.execute(sql + " ORDER BY kind, resource"):
            d = dict(zip(names, row, strict=True))
            d["time"] = _iso(d["time"])
            out.append(d)
        return out

    def status_history(self, scope: str, subject: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT status, run_id, time FROM status_history WHERE scope = ? AND subject = ? "
            "ORDER BY id DESC LIMIT ?",
            (scope, subject, limit),
        ).fetchall()
        return [{"status": s, "run_id": r, "time": _iso(t)} for s, r, t in reversed(rows)]

    # ---- events and alarms ---------------------------------------------------

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
        with self.transaction():
            cur = self._db.execute(
                "INSERT INTO events (time, type, element, resource, message, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), type_, element, resource, message, run_id),
            )
        return int(cur.lastrowid or 0)

    def events(self, since_id: int = 0, limit: int = 1000) -> list[Event]:
        rows = self._db.execute(
            "SELECT id, time, type, element, resource, message, run_id FROM events "
            "WHERE id > ? ORDER BY id LIMIT ?",
            (since_id, limit),
        ).fetchall()
        return [Event(*row) for row in rows]

    def recent_events(self, limit: int = 50) -> list[Event]:
        rows = self._db.execute(
            "SELECT id, time, type, element, resource, message, run_id FROM events "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [Event(*row) for row in reversed(rows)]

    def alarm_level(self) -> str | None:
        level = self.meta("alarm_level")
        return level or None

    def set_alarm_level(self, level: str | None) -> None:
        self.set_meta("alarm_level", level or "")

    # ---- suspensions -----------------------------------------------------------

    def suspend(self, element: str, reason: str, who: str, now: float) -> Suspension:
        """Suspend writes to `element` (NETWORK: all); an existing one keeps its
        start and takes the new reason. An event records it."""
        with self.transaction():
            self._db.execute(
                "INSERT INTO suspensions VALUES (?, ?, ?, ?) ON CONFLICT (element) "
                "DO UPDATE SET reason = excluded.reason, who = excluded.who",
                (element, reason, who, now),
            )
            s = self.suspensions()[element]
            what = element or "the network"
            self.add_event(
                "suspended",
                f"{what}: writes suspended by {who}: {reason}; changes wait as pending updates",
                element=element or None,
            )
        return s

    def resume(self, element: str, who: str) -> Suspension | None:
        """Lift the suspension of `element` (NETWORK: the network-wide one)."""
        with self.transaction():
            s = self.suspensions().get(element)
            if s is None:
                return None
            self._db.execute("DELETE FROM suspensions WHERE element = ?", (element,))
            what = element or "the network"
            self.add_event(
                "resumed",
                f"{what}: writes resumed by {who} (suspended since {_iso(s.since)}: "
                f"{s.reason}); held changes go out on the next run",
                element=element or None,
            )
        return s

    def suspensions(self) -> dict[str, Suspension]:
        rows = self._db.execute(
            "SELECT element, reason, who, since FROM suspensions ORDER BY element"
        ).fetchall()
        return {r[0]: Suspension(*r) for r in rows}

    # ---- drift ----------------------------------------------------------------

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
        rows = self._db.execute(
            f"WITH {_REFS} SELECT r.collection, r.key, i.action, o.outcome, o.revision FROM r "
            "JOIN intents i ON i.id = (SELECT MAX(id) FROM intents "
            "WHERE element = ? AND collection = r.collection AND key = r.key) "
            "LEFT JOIN outcomes o ON o.intent_id = i.id",
            (wanted, element),
        ).fetchall()
        refused = [[c, k] for c, k, _, o, _ in rows if o == "error"]
        rows = [row for row in rows if row[3] != "error"]
        if refused:
            # ...then, for the few the element refused last, the write before.
            rows += self._db.execute(
                f"WITH {_REFS} SELECT r.collection, r.key, i.action, o.outcome, o.revision "
                "FROM r JOIN intents i ON i.id = (SELECT i2.id FROM intents i2 "
                "LEFT JOIN outcomes o2 ON o2.intent_id = i2.id "
                "WHERE i2.element = ? AND i2.collection = r.collection AND i2.key = r.key "
                "AND (o2.outcome IS NULL OR o2.outcome != 'error') "
                "ORDER BY i2.id DESC LIMIT 1) "
                "LEFT JOIN outcomes o ON o.intent_id = i.id",
                (json.dumps(refused), element),
            ).fetchall()
        return {(c, k): LastWrite(a, o, r) for c, k, a, o, r in rows}

    def upsert_drift(self, items: Iterable[DriftItem]) -> list[DriftItem]:
        """Record drift found now; returns the items that were not open before
        (a record already known keeps its first_seen and state)."""
        new: list[DriftItem] = []
        with self.transaction():
            for d in items:
                cur = self._db.execute(
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
                self._db.execute(
                    f"INSERT INTO drift ({_DRIFT_COLUMNS}) VALUES ({', '.join('?' * 12)})",
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
        with self.transaction():
            gone = [
                _drift_item(row)
                for c, k in keys
                for row in self._db.execute(
                    f"SELECT {_DRIFT_COLUMNS} FROM drift "
                    "WHERE element = ? AND collection = ? AND key = ?",
                    (element, c, k),
                )
            ]
            self._db.executemany(
                "DELETE FROM drift WHERE element = ? AND collection = ? AND key = ?",
                [(element, c, k) for c, k in keys],
            )
        return gone

    def capture_drift(self, elements: Iterable[str], note: str) -> list[DriftItem]:
        """Mark the drift items of `elements` as captured (`import --drift`), naming
        where (`note`, the branch); returns them."""
        names = list(elements)
        with self.transaction():
            self._db.executemany(
                "UPDATE drift SET state = 'captured', note = ? WHERE element = ?",
                [(note, n) for n in names],
            )
            return [d for d in self.drift_items() if d.element in names]

    def drift_items(self, element: str | None = None) -> list[DriftItem]:
        """Drift items, read only, ordered by element, collection, key: every record
        found changed outside provgit that is neither corrected, overwritten nor
        equal to the config again. `state` "captured": `import --drift` put it on
        a branch (still held until merged or overwritten)."""
        sql = f"SELECT {_DRIFT_COLUMNS} FROM drift"
        args: tuple[Any, ...] = ()
        if element is not None:
            sql += " WHERE element = ?"
            args = (element,)
        rows = self._db.execute(sql + " ORDER BY element, collection, key", args).fetchall()
        return [_drift_item(row) for row in rows]
