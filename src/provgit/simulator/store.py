"""The element store: one network element kept in one SQLite file (WAL).

Both the `embedded` driver and the simulator server sit on this class, so the
element semantics (revisions, conditional writes, refusals, secrets, the change
feed) exist once. Every write is one `BEGIN IMMEDIATE` transaction, so several
processes may share a file and a crash never leaves half a write.

Tables:
  meta      name/type/version/state, the element revision, the feed floor
  records   (collection, key) -> fields as JSON (secrets redacted), revision
  dns       DN -> the record using it (DN uniqueness across the element)
  cos_refs  COS number -> records naming it (refuse deleting a used COS)
  secrets   plaintexts of sensitive fields, by record and JSON path; never read
            back by any API, only kept as an element keeps a PIN
  changes   the change log behind the feed, trimmed past `retention` entries
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from provgit.fsutil import private_sqlite
from provgit.records import ELEMENT_TYPES
from provgit.simulator import rules
from provgit.simulator.callload import LoadProfile, load_at
from provgit.simulator.store_batch import BatchWriter
from provgit.simulator.store_tables import SCHEMA, ContentDigest, Fence, Fences, Indexes, Secrets
from provgit.wire import codec
from provgit.wire.protocol import (
    Change,
    ChangeFeed,
    ConflictError,
    ElementInfo,
    ElementState,
    FeedTooOldError,
    FencedError,
    LockedError,
    NotFoundError,
    OfflineError,
    Page,
    RefusedError,
    StoredRecord,
    WriteOp,
    WriteResult,
)

VERSIONS = {
    "mivb": "MiVoice Business 10.1 (sim)",
    "micollab": "MiCollab 9.8 (sim)",
    "ivr": "IVR Routing 6.1 (sim)",
}
STATES: tuple[ElementState, ...] = ("running", "locked", "offline")
DEFAULT_RETENTION = 10_000
MAX_PAGE = 5000
MAX_FEED_PAGE = 100_000


def _dumps(value: Any) -> str:
    return codec.dumps(value).decode()


class ElementStore:
    """One element in one SQLite file. Not thread-safe; one instance per thread."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        element_type: str | None = None,
        retention: int = DEFAULT_RETENTION,
        synchronous: str = "FULL",
    ) -> None:
        """Open (creating if needed) the element at `path`.

        A new file needs `element_type`; an existing one must match it if given.
        `synchronous="NORMAL"` (the simulator) stays atomic under WAL; it only
        lets the last commits vanish on power loss.
        """
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.retention = max(1, retention)
        self.forced_refusals: set[tuple[str, str]] = set()  # fault: (collection, key) refused
        self.refusal_reason = "The element refused this record (injected fault)"
        # The most changes a feed answer holds (`element serve --feed-page`).
        self.feed_page = MAX_FEED_PAGE
        self.lie: str | None = None  # fault: writes answered as done, not kept as sent (LIES)
        # The store holds PINs as the element does: owner-only, WAL and SHM too.
        private_sqlite(self.path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA busy_timeout=10000")
        # executescript commits on its own: schema first, then a transaction decides who inits.
        self._db.executescript(SCHEMA)
        with self._tx():
            meta = self._meta()
            if "type" not in meta:
                if element_type not in ELEMENT_TYPES:
                    raise ValueError(
                        f"new element store {self.path} needs a type, one of "
                        + ", ".join(ELEMENT_TYPES)
                    )
                self._set_meta(
                    name=name or self.path.stem,
                    type=element_type,
                    version=VERSIONS[element_type],
                    revision="0",
                    feed_floor="0",
                    state="running",
                )
            elif element_type is not None and meta["type"] != element_type:
                raise ValueError(
                    f"element store {self.path} holds a {meta['type']} element, not {element_type}"
                )
        meta = self._meta()
        self.name: str = meta["name"]
        self.element_type: str = meta["type"]
        self.version: str = meta["version"]
        self._indexes = Indexes(self._db, self.element_type)
        self._secrets = Secrets(self._db)
        self.fences = Fences(self._db)
        self._digest = ContentDigest(self._db)

    # ---- plumbing --------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[None]:
        # IMMEDIATE locks up front: the revision read inside is the one committed on.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT k, v FROM meta").fetchall())

    def _set_meta(self, **values: str) -> None:
        self._db.executemany(
            "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            list(values.items()),
        )

    def _get(self, key: str) -> str:
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return str(row[0])

    def close(self) -> None:
        self._db.close()

    # ---- state -----------------------------------------------------------

    @property
    def state(self) -> ElementState:
        value = self._get("state")
        for state in STATES:
            if value == state:
                return state
        return "running"

    def set_state(self, state: ElementState) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        with self._tx():
            self._set_meta(state=state)

    @property
    def revision(self) -> int:
        return int(self._get("revision"))

    def info(self, now: float | None = None) -> ElementInfo:
        """Always answers, even offline: the state is part of the answer.
        `now` (default: the system clock) places the call-load profile."""
        meta = self._meta()
        load = None
        if meta.get("call_load"):
            elapsed = (time.time() if now is None else now) - float(meta["call_load_since"])
            load = load_at(LoadProfile.parse(meta["call_load"]), elapsed)
        if (digest := meta.get("digest")) is None:  # a file from before it: made once
            with self._tx():
                self._set_meta(digest=(digest := self._digest.start(self._meta()).text()))
        return ElementInfo(
            name=meta["name"],
            type=meta["type"],
            version=meta["version"],
            revision=int(meta["revision"]),
            state=self.state,
            call_load=load,
            digest=digest,
        )

    def set_call_load(
        self, profile: str | None, now: float | None = None, *, keep: bool = False
    ) -> None:
        """Report a call load following `profile` from `now` on (None: none).
        `keep`: leave it (and when it started) alone if it is that profile
        already. Raises ProfileError for a profile that cannot be read."""
        text = "" if profile is None else LoadProfile.parse(profile).text()
        if keep and (self.call_load_profile or "") == text:
            return
        with self._tx():
            self._set_meta(call_load=text, call_load_since=str(time.time() if now is None else now))

    @property
    def call_load_profile(self) -> str | None:
        return self._meta().get("call_load") or None

    def _check_readable(self) -> None:
        if self.state == "offline":
            raise OfflineError(f"element {self.name} is stopped/offline")

    # ---- reads -----------------------------------------------------------

    def list_records(self, collection: str, cursor: str | None = None, limit: int = 1000) -> Page:
        rows, next_cursor, revision = self.list_records_json(collection, cursor, limit)
        records = [StoredRecord(collection, key, codec.loads(text), rev) for key, text, rev in rows]
        return Page(records, next_cursor, revision)

    def list_records_json(
        self, collection: str, cursor: str | None = None, limit: int = 1000
    ) -> tuple[list[tuple[str, str, int]], str | None, int]:
        """The raw page: (key, fields JSON, revision) rows, next cursor, element revision.

        The server splices the stored JSON into its answer without parsing it,
        which is what makes a 100,000-record read cheap.
        """
        self._check_readable()
        self._check_collection(collection)
        limit = max(1, min(limit, MAX_PAGE))
        # One read transaction so the page and its revision agree.
        self._db.execute("BEGIN")
        try:
            rows: list[tuple[str, str, int]] = self._db.execute(
                "SELECT key, fields, revision FROM records WHERE collection = ? AND key > ? "
                "ORDER BY key LIMIT ?",
                (collection, cursor or "", limit + 1),
            ).fetchall()
            revision = self.revision
        finally:
            self._db.execute("COMMIT")
        more = len(rows) > limit
        rows = rows[:limit]
        # The cursor is the last key returned: keys are unique and ordered.
        return rows, (rows[-1][0] if more else None), revision

    def get_record(self, collection: str, key: str) -> StoredRecord:
        self._check_readable()
        self._check_collection(collection)
        row = self._db.execute(
            "SELECT fields, revision FROM records WHERE collection = ? AND key = ?",
            (collection, key),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"{collection}/{key} does not exist on element {self.name}")
        return StoredRecord(collection, key, codec.loads(row[0]), row[1])

    def changes(self, since: int, limit: int = 10000) -> ChangeFeed:
        """Changes after revision `since`, oldest first.

        When more than `limit` changes are due, the feed's revision is the last
        change returned, so asking again since it continues where this stopped.
        """
        self._check_readable()
        limit = max(1, min(limit, self.feed_page))
        self._db.execute("BEGIN")
        try:
            revision = self.revision
            floor = int(self._get("feed_floor"))
            if since < floor:
                raise FeedTooOldError(
                    f"change feed of {self.name} no longer reaches revision {since} "
                    f"(kept from {floor}), too old, resync"
                )
            if since > revision:
                # Not "too old": the asker saw revisions this element never had
                # (it was reset, replaced or restored from a backup). Its copy is
                # from another history, so the answer is the same: resync.
                raise FeedTooOldError(
                    f"revision {since} is ahead of element {self.name} (at {revision}): "
                    "the element was reset or restored, resync"
                )
            rows = self._db.execute(
                "SELECT revision, collection, key, op, fields, record_revision FROM changes "
                "WHERE revision > ? ORDER BY revision LIMIT ?",
                (since, limit + 1),
            ).fetchall()
        finally:
            self._db.execute("COMMIT")
        more = len(rows) > limit
        rows = rows[:limit]
        changes = [
            Change(r[0], r[1], r[2], r[3], None if r[4] is None else codec.loads(r[4]), r[5])
            for r in rows
        ]
        return ChangeFeed(changes, changes[-1].revision if more else revision, more)

    # ---- writes ----------------------------------------------------------

    def write(self, op: WriteOp, *, force: bool = False, fence: Fence | None = None) -> WriteResult:
        """One conditional write in its own transaction; element errors raise."""
        result = self.write_batch([op], force=force, fence=fence)[0]
        if result.error is not None:
            raise result.error
        return result

    def write_batch(
        self, ops: Sequence[WriteOp], *, force: bool = False, fence: Fence | None = None
    ) -> list[WriteResult]:
        """All ops in one transaction, one element revision per successful op.

        Refused or stale ops come back as failed results and change nothing;
        later ops see the earlier ones (a COS created first can be used next).
        `force` is the element admin's own tool (out-of-band edits): it skips
        the revision conditions and the locked state, not the element's rules.
        A `fence` (element, token) lower than one seen refuses the whole batch.
        """
        return [result for result, _ in self._write(ops, force, fence)]

    def write_silently(self, op: WriteOp) -> None:
        """A change the feed never names, no revision moved (a lying feed)."""
        with self._tx():
            self._check_readable()
            row = self._db.execute(
                "SELECT revision FROM records WHERE collection = ? AND key = ?",
                (op.collection, op.key),
            ).fetchone()
            self._digest.start(self._meta())
            batch = self._batch([op], True)
            batch.apply(0, op, self.revision if row is None else int(row[0]))
            batch.changes.clear()  # the feed never names it
            batch.flush()
            self._set_meta(digest=self._digest.text())

    def write_json(self, op: WriteOp, fence: Fence | None = None) -> tuple[int, str | None]:
        """One conditional write; (revision, fields as stored, JSON; None for a
        delete). Lets the server answer without reading the record back."""
        result, text = self._write([op], False, fence)[0]
        if result.error is not None:
            raise result.error
        assert result.revision is not None
        return result.revision, text

    def _write(
        self, ops: Sequence[WriteOp], force: bool, fence: Fence | None = None
    ) -> list[tuple[WriteResult, str | None]]:
        results: list[tuple[WriteResult, str | None]] = []
        stale = None
        with self._tx():
            stale = None if fence is None else self.fences.admit(fence, len(ops))
            # One read of the meta rows: state, revision and feed floor, all
            # under the write lock; the ops' own reads and writes are per batch.
            meta = self._meta()
            state = meta.get("state")
            if state == "offline":
                raise OfflineError(f"element {self.name} is stopped/offline")
            if state == "locked" and not force:
                raise LockedError(f"element {self.name} is locked (busy), try again later")
            revision = int(meta["revision"])
            self._digest.start(meta)
            if stale is not None:
                assert fence is not None
                self.fences.refused(fence, len(ops))  # committed: the refusal is kept
                refused = WriteResult(ok=False, error=FencedError(stale))
                results, ops = [(refused, None)] * len(ops), ()
            batch = self._batch(ops, force)
            lie = None if force else self.lie
            for i, op in enumerate(ops):
                try:
                    if lie in ("drop", "stale") or (lie == "one" and i < len(ops) - 1):
                        # Answered as done, not kept, at a revision of its own
                        # ("drop"), at the one the batch's last op gets, the
                        # one op it keeps ("one"), or at the element's
                        # revision before the write ("stale").
                        text = None if op.op == "delete" else _dumps(op.fields)
                        if lie == "drop":
                            revision += 1
                        answered = revision + 1 if lie == "one" else revision
                        results.append((WriteResult(ok=True, revision=answered), text))
                        continue
                    text = batch.apply(i, op, revision + 1)
                    revision += 1
                    results.append((WriteResult(ok=True, revision=revision), text))
                    if lie == "revert" and op.op == "put":
                        revision = _change_again(batch, i, op, revision)
                except (RefusedError, ConflictError, NotFoundError) as e:
                    results.append((WriteResult(ok=False, error=e), None))
            if revision == int(meta["revision"]):
                return results
            batch.flush()
            if fence is not None:
                self.fences.wrote(fence, int(meta["revision"]) + 1, revision)
            self._set_meta(revision=str(revision), digest=self._digest.text())
            # Trim in steps of 1 % of the retention, not on every write: the
            # feed keeps at least `retention` changes, at most 1 % more.
            floor = revision - self.retention
            if floor >= int(meta["feed_floor"]) + max(1, self.retention // 100):
                self._db.execute("DELETE FROM changes WHERE revision <= ?", (floor,))
                self._set_meta(feed_floor=str(floor))
        return results

    def _batch(self, ops: Sequence[WriteOp], force: bool) -> BatchWriter:
        """A batch's writer, its rows read (inside the caller's transaction)."""
        batch = BatchWriter(
            self._db,
            self.name,
            self.element_type,
            self._indexes,
            self._secrets,
            self.forced_refusals,
            force,
            digest=self._digest,
            refusal_reason=self.refusal_reason,
            lie=self.lie,
        )
        batch.prefetch(ops)
        return batch

    def has_secret(self, collection: str, key: str, path: str) -> bool:
        """Whether the element holds a plaintext at `path` (tests; never the value)."""
        return self._secrets.has(collection, key, path)

    def reset(self) -> None:
        """Empty the element (simulator tests). The revision keeps growing and the
        feed floor moves up to it, so an old `since` gets "too old, resync"."""
        with self._tx():
            for table in ("records", "dns", "cos_refs", "secrets", "changes"):
                self._db.execute(f"DELETE FROM {table}")
            revision = self.revision + 1
            self._set_meta(revision=str(revision), feed_floor=str(revision), state="running")
            self._set_meta(call_load="", digest=ContentDigest.EMPTY)
        self.forced_refusals.clear()

    def _check_collection(self, collection: str) -> None:
        # Reads refuse an unknown collection as writes do (422, naming it), so
        # one path answers one way whatever the method.
        refusal = rules.check_collection(self.element_type, collection)
        if refusal is not None:
            raise RefusedError(refusal.reason, [refusal])


def _change_again(batch: BatchWriter, i: int, op: WriteOp, revision: int) -> int:
    """The "revert" lie: the put just kept at `revision` changed by the element
    a moment later (its first text field, as "alter" does), a feed entry of
    its own at the next revision. The new revision."""
    batch.alter = True
    try:
        batch.apply(i, dataclasses.replace(op, if_revision=revision), revision + 1)
    finally:
        batch.alter = False
    return revision + 1
