"""Leases on a shared PostgreSQL journal: which replica applies which element.

Replicas of `provgit watch` on one network share one PostgreSQL journal. Each
element (and the leader's role, `LEADER`) is held by at most one replica at a
time, through a row of `replica_leases`: its holder, when it expires (the
database's clock, so the replicas' clocks never matter) and a fencing token
that grows by one at every change of holder and never goes back (rows are never
deleted). The holder sends the token with every write to the element, which
refuses a token lower than one it has seen: a replica that lost its lease
cannot write after the next holder did.

`replica_seen` lists the live replicas (a heartbeat) so each takes a fair
share of the elements. Both tables live outside the numbered migrations: they
exist only on PostgreSQL (a SQLite journal has one writer per state directory,
guarded by file locks) and hold no history worth migrating.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from provgit.journal.schema import JournalError

# Not an element name: element names are identifiers (registry), never start with '@'.
LEADER = "@leader"

_TABLES = (
    "CREATE TABLE IF NOT EXISTS replica_leases ("
    " element TEXT PRIMARY KEY,"
    " holder TEXT,"
    " token BIGINT NOT NULL,"
    " expires DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS replica_seen ("
    " replica TEXT PRIMARY KEY,"
    " host TEXT NOT NULL,"
    " pid BIGINT NOT NULL,"
    " url TEXT,"
    " seen DOUBLE PRECISION NOT NULL)",
)
_NOW = "extract(epoch from clock_timestamp())"
# One lock for creating the tables: two replicas starting at once would race on it.
_CREATE_LOCK = 0x6C656173  # "leas"


@dataclass(frozen=True)
class Lease:
    element: str
    holder: str | None
    token: int
    expires: float  # epoch seconds, the database's clock
    live: bool  # held and not expired
    now: float  # the database's clock when read


def ensure_tables(db: Any) -> None:
    db.begin()
    try:
        db.execute("SELECT pg_advisory_xact_lock(?)", (_CREATE_LOCK,))
        for statement in _TABLES:
            db.execute(statement)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def heartbeat(db: Any, replica: str, host: str, pid: int, url: str | None) -> None:
    db.execute(
        "INSERT INTO replica_seen (replica, host, pid, url, seen) "
        f"VALUES (?, ?, ?, ?, {_NOW}) ON CONFLICT (replica) DO UPDATE SET "
        "host = excluded.host, pid = excluded.pid, url = excluded.url, seen = excluded.seen",
        (replica, host, pid, url),
    )


def live_replicas(db: Any, within: float) -> list[str]:
    """The replicas seen within the last `within` seconds, sorted."""
    rows = db.execute(
        f"SELECT replica FROM replica_seen WHERE seen > {_NOW} - ? ORDER BY replica", (within,)
    )
    return [r[0] for r in rows]


def forget(db: Any, replica: str) -> None:
    db.execute("DELETE FROM replica_seen WHERE replica = ?", (replica,))


def claim(db: Any, element: str, replica: str, seconds: float) -> int | None:
    """Take `element` if nobody holds it (or its lease expired): the new token, or None."""
    row = db.execute(
        "INSERT INTO replica_leases AS l (element, holder, token, expires) "
        f"VALUES (?, ?, 1, {_NOW} + ?) ON CONFLICT (element) DO UPDATE SET "
        "holder = excluded.holder, token = l.token + 1, expires = excluded.expires "
        f"WHERE l.holder IS NULL OR l.expires < {_NOW} RETURNING token",
        (element, replica, seconds),
    ).fetchone()
    return None if row is None else int(row[0])


def renew(db: Any, replica: str, held: dict[str, int], seconds: float) -> set[str]:
    """Extend the leases `replica` still holds with the given tokens; the elements renewed."""
    if not held:
        return set()
    rows = db.execute(
        f"UPDATE replica_leases SET expires = {_NOW} + ? "
        "WHERE holder = ? AND element = ANY(?) RETURNING element, token",
        (seconds, replica, list(held)),
    )
    return {e for e, token in rows if held.get(e) == int(token)}


def leave(db: Any, replica: str, held: Iterable[str]) -> None:
    """A replica stopping: hand over what it holds and leave the replica list
    (the others' fair share grows at their next round)."""
    release(db, replica, held)
    forget(db, replica)


def release(db: Any, replica: str, elements: Iterable[str]) -> None:
    """Hand the leases over at once (the next claim finds them free)."""
    names = list(elements)
    if names:
        db.execute(
            "UPDATE replica_leases SET holder = NULL, expires = 0 "
            "WHERE holder = ? AND element = ANY(?)",
            (replica, names),
        )


def leases(db: Any) -> dict[str, Lease]:
    rows = db.execute(
        f"SELECT element, holder, token, expires, {_NOW} FROM replica_leases ORDER BY element"
    )
    return {
        e: Lease(
            e, holder, int(token), float(expires), holder is not None and expires > now, float(now)
        )
        for e, holder, token, expires, now in rows
    }


def leases_in(db: Any, schema: str) -> dict[str, Lease]:
    """The element leases of a fleet network's journal (its schema, `network_schema`;
    {} while it has none), read from the fleet's connection."""
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"not a journal schema name: {schema!r}")
    found = db.execute("SELECT to_regclass(?)", (f"{schema}.replica_leases",)).fetchone()
    if found is None or found[0] is None:
        return {}
    rows = db.execute(
        f"SELECT element, holder, token, expires, {_NOW} FROM {schema}.replica_leases "
        "ORDER BY element"
    )
    return {
        e: Lease(
            e, holder, int(token), float(expires), holder is not None and expires > now, float(now)
        )
        for e, holder, token, expires, now in rows
    }


# What a fleet's status page keys a network's cached document on: any row a
# status derivation reads that a run, a suspension, a cleared error or a
# drift reading adds, removes or changes moves one of these (run ids and
# ends, events, status history, each table's count and latest time).
_MARK_PARTS = (
    "SELECT max(id), max(finished), count(finished) FROM {s}.runs",
    "SELECT max(id) FROM {s}.events",
    "SELECT max(id) FROM {s}.status_history",
    "SELECT count(*), max(time) FROM {s}.element_status",
    "SELECT count(*), max(last_attempt) FROM {s}.pending",
    "SELECT count(*), max(last_retried), max(id) FROM {s}.dist_errors",
    "SELECT count(*), max(since) FROM {s}.suspensions",
    "SELECT count(*), max(last_seen) FROM {s}.drift",
)


def journal_mark(db: Any, schema: str) -> tuple[Any, ...] | None:
    """A fleet network's journal (its schema) in a few numbers that change
    whenever what its status says may have (None while it has no journal),
    read from the fleet's connection in one round trip."""
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"not a journal schema name: {schema!r}")
    found = db.execute("SELECT to_regclass(?)", (f"{schema}.suspensions",)).fetchone()
    if found is None or found[0] is None:
        return None
    # Each part is one row of aggregates: joined, one row of them all.
    parts = ", ".join(f"({q.format(s=schema)}) AS x{i}" for i, q in enumerate(_MARK_PARTS))
    sql = f"SELECT * FROM {parts}"
    row = db.execute(sql).fetchone()
    return None if row is None else tuple(row)


@dataclass(frozen=True)
class Fences:
    """What a replica's journal writes about an element are conditional on:
    `holder` still holding the element's lease with the token `token(element)`
    gives (None: not held). `dropped(element, what)` is told of each write left
    out because the lease moved on (for the log)."""

    holder: str
    token: Callable[[str], int | None]
    dropped: Callable[[str, str], None]


def holds(db: Any, element: str, holder: str, token: int) -> bool:
    """Whether `holder` holds `element` with `token`, locking the lease row
    (FOR SHARE) until the caller's transaction ends: a claim by another replica
    waits for that commit, so no row written in it can land after the new
    holder's."""
    row = db.execute(
        "SELECT 1 FROM replica_leases WHERE element = ? AND holder = ? AND token = ? FOR SHARE",
        (element, holder, token),
    ).fetchone()
    return row is not None


class LeaseLost(JournalError):
    """Intents about elements whose lease this replica no longer holds: none was
    written (nothing may reach an element without its intent)."""

    def __init__(self, elements: Iterable[str]) -> None:
        self.elements = frozenset(elements)
        super().__init__(
            f"the lease on {', '.join(sorted(self.elements))} moved to another replica: "
            "no write is journaled or sent (its new holder writes it)"
        )


class LeaseDbError(Exception):
    """The lease database could not be reached or answered with an error."""


class LeaseStore:
    """The replica's leases, through the process's small lease pool (pool.py),
    apart from the journals' so a renewal never waits behind an apply's
    transaction, with short timeouts so a database that went away is noticed
    well before a lease could expire. Leases are rows, not session locks: no
    lease depends on which connection of the pool a call borrows."""

    def __init__(
        self,
        url: str,
        password: str | None,
        timeout: float,
        schema: str | None = None,
    ) -> None:
        self.url = url
        self.password = password
        self.timeout = timeout
        self.schema = schema  # a fleet network's: its element leases live with its journal
        self._db: Any = None
        self._ready = False  # the tables made (once per store)

    def call(self, fn: Any, *args: Any) -> Any:
        import psycopg

        from provgit.journal.postgres import connect, redact

        try:
            if self._db is None:
                self._db = connect(
                    self.url,
                    self.password,
                    timeout=self.timeout,
                    retry=False,
                    schema=self.schema,
                    create=self.schema is not None,
                    kind="leases",
                )
                ms = max(100, int(self.timeout * 1000))
                self._db.session(f"SET statement_timeout = {ms}")
                self._db.session(f"SET lock_timeout = {ms}")
            if not self._ready:
                ensure_tables(self._db)
                self._ready = True
            return fn(self._db, *args)
        except psycopg.Error as e:
            text = " ".join(str(e).split())
            if self.password:
                text = text.replace(self.password, "***")
            raise LeaseDbError(
                f"lease database {redact(self.url, self.password)}: {text or type(e).__name__}"
            ) from None

    def close(self) -> None:
        if self._db is not None:
            # Closing a broken connection may raise; it is gone either way.
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None
