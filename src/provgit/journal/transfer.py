"""`provgit journal migrate`: the state directory's SQLite journal copied into
a PostgreSQL database, so several hosts can share it.

Every table is copied in one transaction of the target, row counts checked
before it commits: the copy is all there or not there at all. A target that
already holds a journal is refused unless `force` (its rows are then
replaced). Identity sequences are moved past the copied ids, so the next run
adds rows after them. The source file is only read.

The password never appears in a message: the URL is shown redacted, and
driver errors pass through the same scrubbing as opening the journal does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provgit.journal.location import JournalLocation
from provgit.journal.schema import JournalError
from provgit.journal.store import FILENAME, Store, open_file_read_only, open_postgres, shown

# Parents before children is not needed (no foreign keys); meta first for readability.
TABLES = (
    "meta",
    "runs",
    "intents",
    "outcomes",
    "pending",
    "dist_errors",
    "element_status",
    "resource_status",
    "status_history",
    "events",
    "drift",
    "suspensions",
)
# Tables whose `id` is an identity column: its sequence must move past the copy.
IDENTITY = ("runs", "intents", "dist_errors", "status_history", "events")
CHUNK = 5000


@dataclass(frozen=True)
class Transfer:
    """What was copied: rows per table; `target` is the URL without its password."""

    source: Path
    target: str
    rows: dict[str, int]
    replaced: int  # rows the target held before (only with force)


def migrate_to_postgres(
    state_dir: Path, url: str, password: str | None, *, force: bool = False
) -> Transfer:
    """Copy the journal of `state_dir` into the PostgreSQL database at `url`."""
    path = state_dir / FILENAME
    location = JournalLocation(url, password)
    source = open_file_read_only(path)
    try:
        target = open_postgres(location, path, read_only=False)
        try:
            rows, replaced = _copy(source, target, location, force)
        finally:
            target.close()
    finally:
        source.close()
    return Transfer(path, target.where, rows, replaced)


def _held(store: Store) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        where = " WHERE k <> 'schema_version'" if table == "meta" else ""
        counts[table] = int(store.db.execute(f"SELECT count(*) FROM {table}{where}").fetchone()[0])
    return counts


def _copy(
    source: Store, target: Store, location: JournalLocation, force: bool
) -> tuple[dict[str, int], int]:
    import psycopg

    try:
        target.db.begin(exclusive=True)
        try:
            held = _held(target)
            replaced = sum(held.values())
            if replaced and not force:
                listed = ", ".join(f"{t}: {n}" for t, n in held.items() if n)
                raise JournalError(
                    f"the journal {target.where} already holds rows ({listed}); nothing was "
                    "copied. Pass --force to replace them, or name an empty database"
                )
            for table in TABLES:
                target.db.execute(
                    f"DELETE FROM {table}"
                    + (" WHERE k <> 'schema_version'" if table == "meta" else "")
                )
                _copy_table(source, target, table)
            for table in IDENTITY:
                target.db.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
                )
            expected, copied = _held(source), _held(target)
            if expected != copied:
                raise JournalError(
                    f"the copy into {target.where} does not match the source "
                    f"({expected} rows, copied {copied}); nothing was committed"
                )
        except BaseException:
            target.db.execute("ROLLBACK")
            raise
        target.db.execute("COMMIT")
    except psycopg.Error as e:
        raise JournalError(
            f"cannot copy the journal to {target.where}: {shown(e, location)}"
        ) from None
    return expected, replaced


def _copy_table(source: Store, target: Store, table: str) -> None:
    where = " WHERE k <> 'schema_version'" if table == "meta" else ""
    cur = source.db.execute(f"SELECT * FROM {table}{where}")
    columns = [d[0] for d in cur.description]
    insert = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    )
    while True:
        batch = cur.fetchmany(CHUNK)
        if not batch:
            return
        target.db.executemany(insert, batch)
