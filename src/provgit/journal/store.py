"""Opening the journal: for writing (migrated) or for reading only.

By default one SQLite file (`<state_dir>/journal.sqlite`, WAL,
`synchronous=FULL` so a commit is on disk before the element write it
announces is sent); with a journal URL (location.py) a PostgreSQL database
(postgres.py). A writer's calls commit on their own unless made inside
`Store.transaction()`, which groups them into one commit (one fsync), so a
batch of 200 writes costs two fsyncs, not 400.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from provgit.fsutil import private_sqlite
from provgit.journal.backend import Db, SqliteDb
from provgit.journal.leases import Fences, holds
from provgit.journal.location import JournalLocation, journal_location
from provgit.journal.schema import (
    JournalError,
    NoJournal,
    migrate,
    missing_tables,
    refuse_newer,
    stored_version,
)

FILENAME = "journal.sqlite"
BUSY_TIMEOUT_MS = 15000
# Each connection's page cache, in KiB (SQLite's default is 2,000). A watcher
# keeps its journal connections for weeks while the file grows, and each
# cache filled to its bound: 6 MB of a 75 MB watcher after 10,000 commits.
# The journal's hot pages (recent runs, the index tops) fit in far less; the
# rest comes from the OS's file cache at the cost of a copy.
PAGE_CACHE_KIB = 512


class Store:
    """One connection to the journal and the transaction nesting over it.

    `path`: the state directory's journal file (where a SQLite journal is);
    `where`: what messages name (that path, or the URL without its password).
    """

    def __init__(self, db: Db, path: Path, where: str | None = None) -> None:
        self.db = db
        self.path = path
        self.where = where or str(path)
        self._depth = 0
        # Replicas on PostgreSQL: writes about an element need its lease (leases.py).
        self.fences: Fences | None = None
        self._fenced: dict[str, bool] = {}  # this transaction's checks, per element

    def close(self) -> None:
        self.db.close()

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
        self.db.begin()
        self._depth = 1
        self._fenced = {}
        try:
            yield
        except BaseException:
            self._depth = 0
            self.db.execute("ROLLBACK")
            raise
        self._depth = 0
        self.db.execute("COMMIT")

    @contextmanager
    def fenced(self, element: str, what: str) -> Iterator[bool]:
        """A transaction (or the one going on) in which rows about `element` may
        be written: False when this replica no longer holds its lease, and the
        caller writes nothing. Without fences (SQLite, one process) always True."""
        fences = self.fences
        if fences is None:
            yield True
            return
        with self.transaction():
            known = self._fenced.get(element)
            if known is None:
                token = fences.token(element)
                known = token is not None and holds(self.db, element, fences.holder, token)
                self._fenced[element] = known
                if not known:
                    fences.dropped(element, what)
            yield known

    def lost(self, elements: Iterable[str], what: str) -> set[str]:
        """Of `elements`, those whose lease this replica no longer holds (see `fenced`)."""
        lost = set()
        for e in sorted(set(elements)):
            with self.fenced(e, what) as ok:
                if not ok:
                    lost.add(e)
        return lost

    @contextmanager
    def relaxed(self) -> Iterator[None]:
        """Commits inside skip the fsync (WAL stays atomic; a crash may lose them).

        For outcomes: one lost in a crash leaves an open intent, which the next
        run settles by observing the element again, so it need not cost a fsync.
        """
        self.db.set_durable(False)
        try:
            yield
        finally:
            self.db.set_durable(True)


def journal_exists(state_dir: Path) -> bool:
    """Whether the state directory has a journal to read: its file, or the
    configured PostgreSQL database holds one (a database that cannot be
    reached counts as there: opening it says what is wrong)."""
    if journal_location() is None:
        return (state_dir / FILENAME).exists()
    try:
        open_read_only(state_dir / FILENAME).close()
    except NoJournal:
        return False
    except JournalError:
        return True
    return True


def open_writable(path: Path, patient: bool = True) -> Store:
    """Open (creating it if need be) and migrate the journal at `path`, or the
    configured PostgreSQL journal (`patient`: reconnect with retries after a
    dropped connection, see PostgresDb)."""
    location = journal_location()
    if location is not None:
        return open_postgres(location, path, read_only=False, patient=patient)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        private_sqlite(path)  # records element data: owner-only
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (sqlite3.Error, OSError) as e:
        raise JournalError(f"cannot open the journal {path}: {e}") from None
    db = SqliteDb(conn)
    try:
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
        # Refused before anything is written, WAL mode included.
        refuse_newer(stored_version(db, str(path)), str(path))
        db.execute("PRAGMA journal_mode=WAL")
        db.set_durable(True)
        migrate(db, str(path))
    except sqlite3.Error as e:
        db.close()
        raise JournalError(f"cannot open the journal {path}: {e}") from None
    except JournalError:
        db.close()
        raise
    return Store(db, path)


def open_read_only(path: Path) -> Store:
    """Open the journal at `path` (or the configured PostgreSQL journal) to read:
    never creates, writes or migrates it.

    A journal from an older provgit reads as its migration would leave it (the
    tables it lacks are empty); one from a newer provgit is refused.
    """
    location = journal_location()
    if location is not None:
        return open_postgres(location, path, read_only=True)
    return open_file_read_only(path)


def open_file_read_only(path: Path) -> Store:
    """The SQLite journal file at `path`, to read (whatever journal is configured)."""
    if not path.is_file():
        raise NoJournal(f"no journal at {path}")
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as e:
        raise JournalError(f"cannot read the journal {path}: {e}") from None
    db = SqliteDb(conn)
    try:
        db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
        refuse_newer(stored_version(db, str(path)), str(path))
        # TEMP tables live in memory, never in the file.
        for statement in missing_tables(db):
            db.execute(statement)
    except sqlite3.Error as e:
        db.close()
        raise JournalError(f"cannot read the journal {path}: {e}") from None
    except JournalError:
        db.close()
        raise
    return Store(db, path)


def open_postgres(
    location: JournalLocation, path: Path, *, read_only: bool, patient: bool = True
) -> Store:
    from provgit.journal.postgres import connect, is_postgres_url, redact

    if not is_postgres_url(location.url):
        # Not echoed: a libpq key=value string (`host=db password=...`)
        # carries its password where no redaction finds it.
        raise JournalError(
            "the journal's location must be a postgresql://user@host:port/database URL "
            "(--journal-url, $PROVGIT_JOURNAL_URL, journal migrate --to); the one given is "
            "not, and is not shown (a key=value connection string would show its password)"
        )
    where = redact(location.url, location.password)
    if location.schema:
        where += f" (schema {location.schema})"
    verb = "read" if read_only else "open"
    try:
        import psycopg
    except ImportError:
        raise JournalError(
            f"cannot {verb} the journal {where}: the PostgreSQL driver is not installed; "
            "install provgit with the `postgresql` extra (pip install 'provgit[postgresql]')"
        ) from None
    if location.problem is not None:
        raise JournalError(f"cannot {verb} the journal {where}: {location.problem}")
    try:
        db = connect(
            location.url,
            location.password,
            retry=patient,
            schema=location.schema,
            create=not read_only,
            pool_size=location.pool_size,
        )
    except psycopg.Error as e:
        raise JournalError(f"cannot {verb} the journal {where}: {shown(e, location)}") from None
    try:
        version = stored_version(db, where)
        if read_only and version == 0:
            raise NoJournal(f"no journal at {where}")
        refuse_newer(version, where)
        if read_only:
            # Temporary tables first: a read-only session may not create them.
            for statement in missing_tables(db):
                db.session(statement)
            db.session("SET default_transaction_read_only = on")
        else:
            migrate(db, where)
    except psycopg.Error as e:
        db.close()
        raise JournalError(f"cannot {verb} the journal {where}: {shown(e, location)}") from None
    except JournalError:
        db.close()
        raise
    return Store(db, path, where)


def shown(error: Exception, location: JournalLocation) -> str:
    from provgit.journal.postgres import redact

    text = " ".join(str(error).split())
    for secret in (location.password, urlsplit(location.url).password):
        if secret:
            text = text.replace(secret, "***")
    return text.replace(location.url, redact(location.url))
