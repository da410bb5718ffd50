"""One bounded connection pool per process per PostgreSQL journal database.

A fleet replica runs one watcher per network, each with several journals (the
loop's, the apply stage's, the live status's) and a lease store; holding a
connection each, a replica serving 25 networks would pass PostgreSQL's
default `max_connections` (100) on its own. Instead every journal of a
process borrows a connection from one psycopg_pool pool per database for a
statement (or a transaction) and gives it back (postgres.py). The bound is a
setting (`journal.pool_size` in provgit.yaml and the fleet file, default
`DEFAULT_POOL_SIZE`): `LEASE_CONNECTIONS` of it go to a second, small pool
for the leases, so a renewal never waits behind journal transactions, and the
rest to the journals'.

A connection remembers the session settings it carries (`prelude`: the SET
statements of the journal that last set it up). A borrower whose settings
match pays nothing; any other gets `RESET ALL` and its own SETs first (in
`get`, or `pending`: in one pipeline with its statement), so no network's
`search_path` reaches another's statement and a statement outside a
transaction costs one round trip. A connection given back inside a
transaction (rolled back by the pool) or after a SET of unknown outcome
carries unknown settings: its next borrower resets it whatever it needs.
Leases are rows (leases.py), not session advisory locks, so no lease depends
on a connection staying checked out.

All connections in use for longer than a journal waits (`wait_s`): the
statement is not run and `pool_exhausted()` (a psycopg OperationalError: every
caller's database error path) says so; the waits have a bound, so two
journals each holding a connection and wanting another cannot deadlock.
`stats()` feeds the fleet's status and each exhaustion goes to the reporter
(`on_exhausted`: the watcher's log).
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# A replica's connections to the journal database by default: two for the
# leases, ten for the journals. Three replicas: 36 of PostgreSQL's default 100.
DEFAULT_POOL_SIZE = 12
LEASE_CONNECTIONS = 2
MIN_POOL_SIZE = LEASE_CONNECTIONS + 1
# An idle connection goes after this long (a quiet fleet holds few).
MAX_IDLE_S = 60.0
# How often a wait for a connection looks whether opening one failed (see `get`).
SLICE_S = 0.25

# The pool's own log lines (a failed connection attempt, retried in the
# background) are not provgit's output; its errors reach the journal's caller.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())

_lock = threading.Lock()
_pools: dict[tuple[str, str, str | None], SharedPool] = {}
_exhausted_reporter: Callable[[dict[str, Any]], None] | None = None
# Connections this process holds outside the pools (a fleet replica's webhook
# listener, notify.py), taken from the journals' share of the size.
_reserved = 0


def reserve(connections: int) -> None:
    """Count `connections` held outside the pools in the size (before any pool opens)."""
    global _reserved
    _reserved = connections


def application_name() -> str:
    """What the server lists the sessions under (pg_stat_activity): libpq's
    PGAPPNAME when set (one name per replica), else `provgit`."""
    return os.environ.get("PGAPPNAME") or "provgit"


def on_exhausted(reporter: Callable[[dict[str, Any]], None] | None) -> None:
    """Who hears of a wait for a connection that ran out (the watcher's log)."""
    global _exhausted_reporter
    _exhausted_reporter = reporter


_exhausted_type: type[Exception] | None = None


def pool_exhausted() -> type[Exception]:
    """The error of a wait for a connection that ran out while all were in use:
    a psycopg OperationalError (made on first use: the driver is imported only
    once a PostgreSQL journal is opened)."""
    global _exhausted_type
    if _exhausted_type is None:
        import psycopg

        _exhausted_type = type(
            "PoolExhausted",
            (psycopg.OperationalError,),
            {"__doc__": "Every connection of the pool stayed in use for the whole wait."},
        )
    return _exhausted_type


@dataclass
class PoolStats:
    kind: str  # "journal" or "leases"
    max_size: int
    size: int  # open connections (in use, idle, or being opened)
    idle: int
    waiting: int
    exhausted: int  # waits that ran out since the process started
    last_exhausted: float | None  # time.time() of the last one
    in_use: int  # lent to a statement or a transaction now

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "max_size": self.max_size,
            "size": self.size,
            "in_use": self.in_use,
            "waiting": self.waiting,
            "exhausted": self.exhausted,
            "last_exhausted": self.last_exhausted,
        }


class SharedPool:
    """A psycopg_pool ConnectionPool and who uses it (closed with its last user)."""

    def __init__(
        self,
        key: tuple[str, str, str | None],
        url: str,
        password: str | None,
        kind: str,
        max_size: int,
        connect_timeout: float,
    ) -> None:
        from psycopg_pool import ConnectionPool

        self.key = key
        self.kind = kind
        self.where = ""
        self.users = 0
        self.in_use = 0  # lent out now (the pool's own size counts connections being opened)
        self.exhausted = 0
        self.last_exhausted: float | None = None
        kwargs: dict[str, Any] = {
            "autocommit": True,
            # libpq counts whole seconds (and 1 as 2): at least 2.
            "connect_timeout": max(2, round(connect_timeout)),
            "application_name": application_name(),
        }
        if password is not None:
            kwargs["password"] = password
        # The last failure to open a connection: (time.monotonic(), error).
        self.connect_error: tuple[float, Exception] | None = None
        self.pool = ConnectionPool(
            url,
            connection_class=_connection_class(self),
            kwargs=kwargs,
            min_size=0,
            max_size=max_size,
            max_idle=MAX_IDLE_S,
            name=f"provgit-{kind}",
            open=True,
        )

    @property
    def max_size(self) -> int:
        return int(self.pool.max_size)

    def get(self, timeout: float, prelude: tuple[str, ...] = (), defer: bool = False) -> Any:
        """A connection within `timeout` s, carrying only the session settings
        `prelude` (SET statements) makes; when `defer`, what it still needs
        sent is left for `pending`, to go with the borrower's statement. One
        the server hung up on while it was idle (restart, terminated session)
        is closed and the next taken: found by a look at its socket, without a
        round trip, so nothing of the borrower's statement is sent on it."""
        import psycopg

        for _ in range(self.max_size + 1):
            conn = self._borrow(timeout)
            if _hung_up(conn):
                conn.close()
                self.put(conn)  # the pool opens another
                continue
            if conn.provgit_prelude != prelude:
                conn.provgit_prelude = None
                conn.provgit_target = prelude
                if not defer:
                    self._fit_now(conn)
            return conn
        raise psycopg.OperationalError(f"no working connection to {self.where}")

    def _fit_now(self, conn: Any) -> None:
        import psycopg

        try:
            conn.execute("; ".join(pending(conn)).encode())
        except psycopg.Error:
            self.put(conn)
            raise
        settled(conn)

    def _borrow(self, timeout: float) -> Any:
        """A connection within `timeout` s. When opening one fails meanwhile
        (the pool opens them in the background), that error is raised at once:
        a watcher must answer /healthz and stop writing, not wait out the
        timeout, and the caller sees the server's own words."""
        from psycopg_pool import PoolTimeout

        started = time.monotonic()
        while True:
            left = timeout - (time.monotonic() - started)
            try:
                conn = self.pool.getconn(timeout=max(0.01, min(SLICE_S, left)))
                break
            except PoolTimeout as e:
                failed = self.connect_error
                if failed is not None and failed[0] >= started - SLICE_S:
                    raise failed[1] from None
                if left <= SLICE_S:
                    if self.in_use < self.max_size:
                        raise  # connecting is slow: the pool's own timeout error
                    raise self._exhausted(timeout) from e
        with _lock:
            self.in_use += 1
        return conn

    def _exhausted(self, timeout: float) -> Exception:
        self.exhausted += 1
        self.last_exhausted = time.time()
        info = self.stats().as_dict() | {"waited_s": round(timeout, 1), "where": self.where}
        reporter = _exhausted_reporter
        if reporter is not None:
            reporter(info)
        return pool_exhausted()(
            f"all {self.max_size} {self.kind} connections to {self.where} stayed in use "
            f"for {timeout:.1f} s, so this statement was not run; raise journal.pool_size "
            "(provgit.yaml or the fleet file) if this happens under normal load"
        )

    def put(self, conn: Any) -> None:
        import psycopg

        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.provgit_prelude = None  # rolled back by the pool: its SETs are unknown
        with _lock:
            self.in_use -= 1
        self.pool.putconn(conn)

    def stats(self) -> PoolStats:
        s = self.pool.get_stats()
        return PoolStats(
            self.kind,
            self.max_size,
            int(s.get("pool_size", 0)),
            int(s.get("pool_available", 0)),
            int(s.get("requests_waiting", 0)),
            self.exhausted,
            self.last_exhausted,
            self.in_use,
        )


def _connection_class(shared: SharedPool) -> Any:
    """psycopg's connection, noting on `shared` why opening one failed (the
    pool retries in the background and keeps the error to itself)."""
    import psycopg

    class Connection(psycopg.Connection[Any]):
        # The session settings it carries (None: unknown, reset before use) and
        # those its borrower asked for.
        provgit_prelude: tuple[str, ...] | None = ()
        provgit_target: tuple[str, ...] | None = ()

        @classmethod
        def connect(cls, *args: Any, **kwargs: Any) -> Any:
            try:
                conn = super().connect(*args, **kwargs)
            except psycopg.Error as e:
                shared.connect_error = (time.monotonic(), e)
                raise
            shared.connect_error = None
            return conn

    return Connection


def pending(conn: Any) -> list[str]:
    """The statements `conn` needs before its borrower's: none when it carries
    the borrower's settings (or is no longer fresh from `get`), else `RESET
    ALL` (another network's search_path must not stay) and the borrower's SETs."""
    if conn.provgit_target is None or conn.provgit_prelude == conn.provgit_target:
        return []
    return ["RESET ALL", *conn.provgit_target]


def settled(conn: Any) -> None:
    """`pending(conn)` ran: it carries its borrower's settings."""
    conn.provgit_prelude = conn.provgit_target


def unsettled(conn: Any) -> None:
    """A SET ran on `conn` outside `get` (it may be rolled back with its
    transaction): its next borrower resets it."""
    conn.provgit_prelude = conn.provgit_target = None


def _hung_up(conn: Any) -> bool:
    # An idle session has nothing to say: anything readable is the server's
    # goodbye (FATAL, then end of stream) or a stream already closed.
    if conn.closed or conn.broken:
        return True
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return bool(readable)


def acquire(
    url: str,
    password: str | None,
    where: str,
    size: int | None = None,
    kind: str = "journal",
    connect_timeout: float = 10.0,
) -> SharedPool:
    """The process's pool for `url` (created on first use, `size` connections in
    all for the database, `LEASE_CONNECTIONS` of them the leases'); give it back
    with `release`."""
    total = max(MIN_POOL_SIZE, size or DEFAULT_POOL_SIZE)
    key = (kind, url, password)
    with _lock:
        shared = _pools.get(key)
        if shared is None:
            journals = max(1, total - LEASE_CONNECTIONS - _reserved)
            max_size = LEASE_CONNECTIONS if kind == "leases" else journals
            shared = SharedPool(key, url, password, kind, max_size, connect_timeout)
            shared.where = where
            _pools[key] = shared
        shared.users += 1
        return shared


def release(shared: SharedPool) -> None:
    with _lock:
        shared.users -= 1
        if shared.users > 0 or _pools.get(shared.key) is not shared:
            return
        del _pools[shared.key]
    shared.pool.close(timeout=1.0)


def stats() -> list[PoolStats]:
    """Every open pool of this process (the fleet's status shows them)."""
    with _lock:
        pools = list(_pools.values())
    return [p.stats() for p in pools]
