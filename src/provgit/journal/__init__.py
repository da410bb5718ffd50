"""The apply journal: what provgit meant to do, what happened, and what is left.

One SQLite file (`<state_dir>/journal.sqlite`, WAL, `synchronous=FULL` so a
commit is on disk before the element write it announces is sent).
Or, with a journal URL (location.py: --journal-url, $PROVGIT_JOURNAL_URL,
provgit.yaml's `journal.url`), a PostgreSQL database (postgres.py) with the
same tables; backend.py is the seam the table modules write through.

Tables (schema version in `meta`; migrations in schema.py), one module each:
  meta            k/v: schema_version, alarm_level, ...          meta.py
  runs            one row per apply/reconcile/errors run          runs.py
  intents         written (and fsynced) before an element write   writes.py
  outcomes        written after the element answered; an intent without an
                  outcome is a write whose fate is unknown        writes.py
  pending         updates that could not be delivered             pending.py
  dist_errors     SDS distribution errors an admin must retry, force or
                  delete; one per (element, collection, key)      dist_errors.py
  element_status, resource_status, status_history                 statuses.py
  events          the feed; `id` is stable (AUTOINCREMENT)        events.py
  drift           (schema 2) open drift items                     drift.py
  suspensions     (schema 3) writes held by a person              suspensions.py

`Journal` (db.py) reads and writes; `JournalReader` (reader.py), from
`Journal.open_read_only(path)`, only reads and never changes the file.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provgit.journal.db import (
        EVENT_TYPES,
        FILENAME,
        NETWORK,
        SCHEMA_VERSION,
        DistributionError,
        DriftItem,
        Event,
        Fences,
        Intent,
        Journal,
        JournalError,
        JournalReader,
        LastWrite,
        LeaseLost,
        PendingUpdate,
        Suspension,
        fields_hash,
        journal_exists,
        read_journal,
    )


# Loaded on first use (PEP 562): `provgit.journal.location` (which every
# command reads to find its journal) must not load SQLite and every table
# module for `provgit validate`.
def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'provgit.journal' has no attribute {name!r}")
    value = getattr(import_module("provgit.journal.db"), name)
    globals()[name] = value
    return value


__all__ = [
    "EVENT_TYPES",
    "FILENAME",
    "NETWORK",
    "SCHEMA_VERSION",
    "DistributionError",
    "DriftItem",
    "Event",
    "Fences",
    "Intent",
    "Journal",
    "JournalError",
    "JournalReader",
    "LastWrite",
    "LeaseLost",
    "PendingUpdate",
    "Suspension",
    "fields_hash",
    "journal_exists",
    "read_journal",
]
