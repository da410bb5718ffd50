"""Opening the journal file: for writing (migrated) or for reading only.

One SQLite file (`<state_dir>/journal.sqlite`, WAL, `synchronous=FULL` so a
commit is on disk before the element write it announces is sent). A writer's
calls commit on their own unless made inside `Store.transaction()`, which
groups them into one commit (one fsync), so a batch of 200 writes costs two
fsyncs, not 400.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provgit.fsutil import private_sqlite
from provgit.journal.schema import (
    JournalError,
    migrate,
    missing_tables,
    refuse_newer,
    stored_version,
)

FILENAME = "journal.sqlite"
BUSY_TIMEOUT_MS = 15000


class Store:
    """One connection to the journal and the transaction nesting over it."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        self._depth = 0

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
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.db.execute("ROLLBACK")
            raise
        self._depth = 0
        self.db.execute("COMMIT")

    @contextmanager
    def relaxed(self) -> Iterator[None]:
        """Commits inside skip the fsync (WAL stays atomic; a crash may lose them).

        For outcomes: one lost in a crash leaves an open intent, which the next
        run settles by observing the element again, so it need not cost a fsync.
        """
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self.db.execute("PRAGMA synchronous=FULL")


def open_writable(path: Path) -> Store:
    """Open (creating it if need be) and migrate the journal at `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        private_sqlite(path)  # records element data: owner-only
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (sqlite3.Error, OSError) as e:
        raise JournalError(f"cannot open the journal {path}: {e}") from None
    try:
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # Refused before anything is written, WAL mode included.
        refuse_newer(stored_version(db, path), path)
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed intent survives power loss, not just a crash.
        db.execute("PRAGMA synchronous=FULL")
        migrate(db, path)
    except sqlite3.Error as e:
        db.close()
        raise JournalError(f"cannot open the journal {path}: {e}") from None
    except JournalError:
        db.close()
        raise
    return Store(db, path)


def open_read_only(path: Path) -> Store:
    """Open the journal at `path` to read: never creates, writes or migrates it.

    A journal from an older provgit reads as its migration would leave it (the
    tables it lacks are empty); one from a newer provgit is refused.
    """
    if not path.is_file():
        raise JournalError(f"no journal at {path}")
    try:
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as e:
        raise JournalError(f"cannot read the journal {path}: {e}") from None
    try:
        refuse_newer(stored_version(db, path), path)
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
