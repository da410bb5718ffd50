"""The element store's side tables: the DN and COS indexes behind its
reference rules, and the plaintexts of sensitive fields (`store.ElementStore`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from provgit.records import MANAGED_BY, Fields
from provgit.wire import codec
from provgit.wire import digest as content
from provgit.wire.protocol import Refusal, RefusedError
from provgit.wire.sensitive import SENSITIVE

# The store's tables (see `store.py`); IF NOT EXISTS: opening a file makes them.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
  collection TEXT NOT NULL, key TEXT NOT NULL, fields TEXT NOT NULL, revision INTEGER NOT NULL,
  PRIMARY KEY (collection, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dns (
  dn TEXT PRIMARY KEY, collection TEXT NOT NULL, key TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dns_owner ON dns (collection, key);
CREATE TABLE IF NOT EXISTS cos_refs (
  cos TEXT NOT NULL, collection TEXT NOT NULL, key TEXT NOT NULL,
  PRIMARY KEY (cos, collection, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cos_refs_owner ON cos_refs (collection, key);
CREATE TABLE IF NOT EXISTS secrets (
  collection TEXT NOT NULL, key TEXT NOT NULL, path TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (collection, key, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
  revision INTEGER PRIMARY KEY, collection TEXT NOT NULL, key TEXT NOT NULL,
  op TEXT NOT NULL, fields TEXT, record_revision INTEGER NOT NULL);
"""

# (fence name, token): the element a provgit replica holds a lease on, and its token.
Fence = tuple[str, int]


def _dumps(value: Any) -> str:
    return codec.dumps(value).decode()


class Indexes:
    """`dns` (DN -> the record using it) and `cos_refs` (COS -> records naming it).
    Checked and kept up to date per batch by `store_batch.BatchWriter`."""

    def __init__(self, db: sqlite3.Connection, element_type: str) -> None:
        self.db = db
        self.element_type = element_type

    def check_delete(self, collection: str, key: str, form: str) -> None:
        if collection != "cos":
            return
        users = self.db.execute(
            "SELECT collection, key FROM cos_refs WHERE cos = ? ORDER BY collection, key LIMIT 3",
            (key,),
        ).fetchall()
        if users:
            names = ", ".join(f"{c}/{k}" for c, k in users)
            reason = f"Class of Service {key} is still used by {names}"
            raise RefusedError(f"{form} {key} refused: {reason}", [Refusal(form, None, reason)])


class Secrets:
    """Plaintexts of sensitive fields, by record and JSON path; never read back
    by any API, only kept as an element keeps a PIN."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def store(self, collection: str, key: str, stored: Fields, secrets: dict[str, Any]) -> None:
        # A fingerprint sent without its value keeps the plaintext already held
        # (rewriting a record must not wipe its PIN); paths no longer present go.
        kept = dict(
            self.db.execute(
                "SELECT path, value FROM secrets WHERE collection = ? AND key = ?",
                (collection, key),
            ).fetchall()
        )
        self.db.execute("DELETE FROM secrets WHERE collection = ? AND key = ?", (collection, key))
        rows = self.rows(collection, key, stored, secrets, kept)
        self.db.executemany("INSERT INTO secrets VALUES (?, ?, ?, ?)", rows)

    @staticmethod
    def rows(
        collection: str, key: str, stored: Fields, secrets: dict[str, Any], kept: dict[str, str]
    ) -> list[tuple[str, str, str, str]]:
        """The secret rows of a record written as `stored`: the plaintexts sent,
        else the ones `kept` for a fingerprint sent alone."""
        rows: list[tuple[str, str, str, str]] = []
        for path in _sensitive_paths(stored, ""):
            if path in secrets:
                rows.append((collection, key, path, _dumps(secrets[path])))
            elif path in kept:
                rows.append((collection, key, path, kept[path]))
        return rows

    def drop(self, collection: str, key: str) -> None:
        self.db.execute("DELETE FROM secrets WHERE collection = ? AND key = ?", (collection, key))

    def has(self, collection: str, key: str, path: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM secrets WHERE collection = ? AND key = ? AND path = ?",
            (collection, key, path),
        ).fetchone()
        return row is not None


def _sensitive_paths(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, dict):
        if SENSITIVE in value:
            yield path
            return
        for k, v in value.items():
            yield from _sensitive_paths(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _sensitive_paths(v, f"{path}[{i}]")


class Fences:
    """Fencing tokens (`X-Provgit-Fence: <element>/<token>`): the highest token
    seen per fence name, and which fence each change was written under.

    A write with a lower token than one already seen is refused as a whole
    (FencedError): its sender lost its lease to a newer holder. A write
    without a fence is not checked (a single provgit, an admin's edit).
    """

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS fences (name TEXT PRIMARY KEY, token INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS change_fences ("
        " revision INTEGER PRIMARY KEY, name TEXT NOT NULL, token INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS fence_refusals ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, token INTEGER NOT NULL,"
        " highest INTEGER NOT NULL, ops INTEGER NOT NULL);"
    )

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.executescript(self.SCHEMA)

    def admit(self, fence: tuple[str, int], ops: int) -> str | None:
        """Inside the write's transaction: None to go ahead, else why it is refused
        (the refusal is recorded by the caller after its rollback, `refused`)."""
        name, token = fence
        row = self.db.execute("SELECT token FROM fences WHERE name = ?", (name,)).fetchone()
        if row is not None and token < int(row[0]):
            return (
                f"fencing token {token} for {name} is stale: token {row[0]} was seen; "
                "the writer lost its lease on this element to another replica"
            )
        if row is None or token > int(row[0]):
            self.db.execute(
                "INSERT INTO fences VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET token = ?",
                (name, token, token),
            )
        return None

    def refused(self, fence: tuple[str, int], ops: int) -> None:
        row = self.db.execute("SELECT token FROM fences WHERE name = ?", (fence[0],)).fetchone()
        self.db.execute(
            "INSERT INTO fence_refusals (name, token, highest, ops) VALUES (?, ?, ?, ?)",
            (fence[0], fence[1], int(row[0]) if row else 0, ops),
        )

    def wrote(self, fence: tuple[str, int], first: int, last: int) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO change_fences VALUES (?, ?, ?)",
            [(r, fence[0], fence[1]) for r in range(first, last + 1)],
        )

    def report(self) -> dict[str, Any]:
        """What GET /admin/fences shows: tokens, refusals and each change's fence."""
        return {
            "highest": {n: t for n, t in self.db.execute("SELECT name, token FROM fences")},
            "refused": [
                {"name": n, "token": t, "highest": h, "ops": o}
                for n, t, h, o in self.db.execute(
                    "SELECT name, token, highest, ops FROM fence_refusals ORDER BY id"
                )
            ],
            "changes": [
                {"revision": r, "name": n, "token": t}
                for r, n, t in self.db.execute(
                    "SELECT revision, name, token FROM change_fences ORDER BY revision"
                )
            ],
        }


class ContentDigest:
    """The element's content digest (wire/digest.py) while a write runs: taken
    from the meta row at the start, moved per written record, put back by
    the store with the revision."""

    EMPTY = content.to_text(0)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.value = 0

    def start(self, meta: dict[str, str]) -> ContentDigest:
        kept = content.from_text(meta.get("digest"))
        if kept is None:  # a file from before the digest: from every record, once
            rows = self.db.execute("SELECT collection, key, fields FROM records")
            kept = content.digest_of((c, k, codec.loads(f)) for c, k, f in rows)
        self.value = kept
        return self

    def moved(self, collection: str, key: str, old: Fields | None, new: Fields | None) -> None:
        self.value = content.moved(self.value, collection, key, old, new)

    def created(self, collection: str, key: str, new: Fields, encoded: bytes) -> None:
        """A record created as `new`, whose JSON is `encoded`. When the only
        `"_` in that JSON is the ownership mark's key (or there is none), no
        top-level field is `_` bookkeeping: the fields are hashed as they are,
        without the copy that leaves bookkeeping out."""
        own = encoded.count(b'"_') == (1 if MANAGED_BY in new else 0)
        share = content.record_hash(collection, key, new, own=own)
        self.value = (self.value + share) % content.MODULUS

    def text(self) -> str:
        return content.to_text(self.value)
