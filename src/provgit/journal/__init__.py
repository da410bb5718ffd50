"""The apply journal: what provgit meant to do, what happened, and what is left.

One SQLite file (`<state_dir>/journal.sqlite`, WAL, `synchronous=FULL` so a
commit is on disk before the element write it announces is sent).
"""

from provgit.journal.db import (
    EVENT_TYPES,
    FILENAME,
    NETWORK,
    SCHEMA_VERSION,
    DistributionError,
    DriftItem,
    Event,
    Intent,
    Journal,
    JournalError,
    LastWrite,
    PendingUpdate,
    Suspension,
    fields_hash,
)

__all__ = [
    "EVENT_TYPES",
    "FILENAME",
    "NETWORK",
    "SCHEMA_VERSION",
    "DistributionError",
    "DriftItem",
    "Event",
    "Intent",
    "Journal",
    "JournalError",
    "LastWrite",
    "PendingUpdate",
    "Suspension",
    "fields_hash",
]
