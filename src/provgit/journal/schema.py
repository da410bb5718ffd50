"""The journal's schema: numbered migrations from every earlier version.

Step N takes a journal at schema N-1 to schema N; a new journal (schema 0)
runs them all, so a fresh journal and an upgraded one are built by the same
statements. Every statement is `IF NOT EXISTS`: a journal that provgit wrote
before this framework (tables added in place, the version set afterwards) or
one whose creation was interrupted converges all the same. Statement texts
are those earlier provgit versions used (SQLite keeps them in
`sqlite_master`), so an upgraded journal's schema equals a fresh one's.

Schema history:
  1  meta, runs, intents, outcomes, pending, dist_errors, element_status,
     resource_status, status_history, events (journals made before the
     streaming apply lack the intents_run index: step 2 adds it)
  2  drift, and the intents_record index
  3  suspensions

The statements are SQLite's; a PostgreSQL journal runs the same steps through
its adapter's `ddl` (postgres.py), which only renames types.

To change the schema: append a step, never edit one that has shipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provgit.journal.backend import Db


class JournalError(Exception):
    """The journal cannot be opened or is from a newer provgit."""


class JournalLost(JournalError):
    """The journal's database went away during a run and a write could not be
    recorded (or may not have been): the run must stop before its next element
    write. The message never holds the password."""


class NoJournal(JournalError):
    """There is no journal to read (none was ever written there)."""


@dataclass(frozen=True)
class Migration:
    version: int  # the schema this step produces
    why: str
    statements: tuple[str, ...]


def _statements(script: str) -> tuple[str, ...]:
    # One statement at a time: `executescript` would commit the migration's
    # transaction before running them.
    return tuple(s.strip() for s in script.split(";") if s.strip())


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "the first journal",
        _statements(
            """
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
"""
        ),
    ),
    Migration(
        2,
        "drift items; the index for each record's last write",
        _statements(
            """
CREATE INDEX IF NOT EXISTS intents_run ON intents (run_id);
CREATE INDEX IF NOT EXISTS intents_record ON intents (element, collection, key, id);
CREATE TABLE IF NOT EXISTS drift (
  element TEXT NOT NULL, collection TEXT NOT NULL, key TEXT NOT NULL,
  kind TEXT NOT NULL, resource TEXT NOT NULL, change TEXT NOT NULL, fields TEXT NOT NULL,
  revision INTEGER, state TEXT NOT NULL, note TEXT,
  first_seen REAL NOT NULL, last_seen REAL NOT NULL,
  PRIMARY KEY (element, collection, key)) WITHOUT ROWID;
"""
        ),
    ),
    Migration(
        3,
        "suspensions",
        _statements(
            """
CREATE TABLE IF NOT EXISTS suspensions (
  element TEXT PRIMARY KEY, reason TEXT NOT NULL, who TEXT NOT NULL,
  since REAL NOT NULL) WITHOUT ROWID;
"""
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
# The tables the migrations make (meta aside): in a database without provgit's
# meta table, one of these is another application's.
JOURNAL_TABLES = frozenset(
    m.group(1)
    for step in MIGRATIONS
    for statement in step.statements
    if (m := re.match(r"\s*CREATE TABLE IF NOT EXISTS (\w+)", statement))
) - {"meta"}


def stored_version(db: Db, path: str) -> int:
    """The schema version the journal records (0: a new, empty one). Reads only."""
    tables = db.table_names()
    if "meta" not in tables:
        foreign = sorted(JOURNAL_TABLES & tables)
        if foreign:
            # Creating the rest beside them, then writing runs into theirs,
            # would change (or break on) someone else's data.
            raise JournalError(
                f"the journal {path} is not a provgit journal: it holds tables provgit did "
                f"not make ({', '.join(foreign)}) and no provgit schema version; nothing was "
                "changed there: give provgit a database (or schema) of its own"
            )
        return 0
    row = db.execute("SELECT v FROM meta WHERE k = 'schema_version'").fetchone()
    if row is None:
        return 0  # created by a provgit that stopped before recording it
    try:
        return int(row[0])
    except ValueError:
        raise JournalError(
            f"the journal {path} records schema version {row[0]!r}, which is not a number; "
            "it was not written by provgit: move it away to start a new journal"
        ) from None


def refuse_newer(version: int, path: str) -> None:
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"the journal {path} is from a newer provgit (schema {version}, "
            f"this one knows {SCHEMA_VERSION}); upgrade provgit"
        )


def migrate(db: Db, path: str) -> int:
    """Bring the journal to SCHEMA_VERSION in one transaction; returns the
    version it had. A journal from a newer provgit is refused unchanged."""
    before = stored_version(db, path)
    refuse_newer(before, path)
    if before == SCHEMA_VERSION:
        return before
    db.begin(exclusive=True)
    try:
        # Read again under the write lock: another process may have migrated it.
        before = stored_version(db, path)
        refuse_newer(before, path)
        for step in MIGRATIONS:
            if step.version > before:
                for statement in step.statements:
                    db.execute(db.ddl(statement))
        db.execute(
            "INSERT INTO meta VALUES ('schema_version', ?) "
            "ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            (str(SCHEMA_VERSION),),
        )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return before


def missing_tables(db: Db) -> list[str]:
    """CREATE TEMP TABLE statements for the tables an older journal lacks.

    A read-only reader cannot migrate; it lays empty temporary tables (which
    live in memory, not in the file) over the missing ones, so it reads an
    old journal as the migration would leave it: nothing in the new tables.
    """
    present = db.table_names()
    out = []
    for step in MIGRATIONS:
        for statement in step.statements:
            words = statement.split()
            if words[:5] == ["CREATE", "TABLE", "IF", "NOT", "EXISTS"] and words[5] not in present:
                out.append(db.ddl("CREATE TEMP TABLE " + " ".join(words[5:])))
    return out
