"""The journal's database seam: one connection adapter per backend.

Every table module writes portable SQL (`?` placeholders, `INSERT ... ON
CONFLICT ... DO UPDATE`, `RETURNING id`) and asks the adapter for the few
things the dialects spell differently: beginning a write transaction, the
durability of a commit, JSON array parameters, the schema's DDL and whether
a table exists.

`SqliteDb` (the default, a file in the state directory) hands SQLite's own
`execute`/`executemany` through untouched, so the default journal costs no
extra call per statement. `PostgresDb` (postgres.py) rewrites placeholders
and DDL for PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    """What the table modules use of a cursor (sqlite3's and psycopg's agree)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Any: ...


class Db(Protocol):
    """One connection to the journal, in autocommit mode outside `begin()`."""

    # A JSON array of [collection, key] pairs as the rows r(collection, key).
    refs_cte: str
    # A JSON array of strings as a one-column row set.
    json_texts: str
    # The one-character separator that joins collection and key (0x1f).
    unit_sep: str
    # Whether a statement costs a round trip (a server): many rows then go as
    # one JSON parameter of one statement, not one statement per row.
    remote: bool

    def execute(self, sql: str, args: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, args: Iterable[Sequence[Any]], /) -> Any: ...

    def insert_ids(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """Run the INSERT for each row (inside a transaction); their new ids in order."""
        ...

    def begin(self, exclusive: bool = False) -> None:
        """Start a write transaction; `exclusive`: one writer at a time (migrations)."""
        ...

    def set_durable(self, durable: bool) -> None:
        """Whether a commit waits until it is on disk."""
        ...

    def table_names(self) -> set[str]: ...

    def ddl(self, statement: str) -> str:
        """A schema statement (as schema.py writes it, SQLite's) in this dialect."""
        ...

    def close(self) -> None: ...


class SqliteDb:
    """The journal in a SQLite file: statements pass through unchanged."""

    refs_cte = (
        "r (collection, key) AS (SELECT json_extract(value, '$[0]'), "
        "json_extract(value, '$[1]') FROM json_each(?))"
    )
    json_texts = "SELECT value FROM json_each(?)"
    unit_sep = "char(31)"
    remote = False

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        # Bound methods: no adapter frame on the default journal's hot path.
        self.execute = conn.execute
        self.executemany = conn.executemany

    def insert_ids(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        self.conn.executemany(sql, rows)
        # Inside one write transaction nobody else inserts: the ids are consecutive.
        last = int(self.conn.execute("SELECT last_insert_rowid()").fetchone()[0])
        return list(range(last - len(rows) + 1, last + 1))

    def begin(self, exclusive: bool = False) -> None:
        # IMMEDIATE takes the write lock now: SQLite has one writer at a time anyway.
        self.conn.execute("BEGIN IMMEDIATE")

    def set_durable(self, durable: bool) -> None:
        # FULL: a committed intent survives power loss, not just a crash.
        self.conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")

    def table_names(self) -> set[str]:
        return {name for (name,) in self.conn.execute("SELECT name FROM sqlite_master")}

    def ddl(self, statement: str) -> str:
        return statement

    def close(self) -> None:
        self.conn.close()


def database_errors() -> tuple[type[Exception], ...]:
    """The exceptions a journal database may raise. psycopg's count only once it
    was imported (no PostgreSQL journal opened means none can come from it)."""
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        errors += (psycopg.Error,)
    return errors


def delete_refs(db: Db, table: str, element: str, keys: Iterable[tuple[str, str]]) -> int:
    """Delete `element`'s rows of `table` (keyed element, collection, key) for
    these records; how many went. On a server one statement for them all
    (a batch clears 200 records: 200 statements cost 200 executions there)."""
    if not db.remote:
        cur = db.executemany(
            f"DELETE FROM {table} WHERE element = ? AND collection = ? AND key = ?",
            [(element, c, k) for c, k in keys],
        )
        return int(cur.rowcount)
    refs = [[c, k] for c, k in keys]
    if not refs:
        return 0
    cur = db.execute(
        f"WITH {db.refs_cte} DELETE FROM {table} t USING r "
        "WHERE t.element = ? AND t.collection = r.collection AND t.key = r.key",
        (json.dumps(refs), element),
    )
    return int(cur.rowcount)
