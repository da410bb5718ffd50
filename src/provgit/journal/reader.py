"""Reading the journal: `JournalReader`, the read-only face of every table.

A report, a status query or a plan preview reads the journal while a run may
be writing it. `JournalReader.open_read_only(path)` opens the file read-only:
it never creates, writes or migrates it, reads a journal of an older schema
as its migration would leave it and refuses one from a newer provgit.
`Journal` (db.py) is a reader that also writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

from provgit.journal.backend import database_errors
from provgit.journal.dist_errors import DistributionErrors
from provgit.journal.drift import DriftItems
from provgit.journal.events import Events
from provgit.journal.meta import Meta
from provgit.journal.pending import PendingUpdates
from provgit.journal.rows import (
    DistributionError,
    DriftItem,
    Event,
    Intent,
    LastWrite,
    PendingUpdate,
    Suspension,
)
from provgit.journal.runs import Runs
from provgit.journal.schema import JournalError
from provgit.journal.statuses import Statuses
from provgit.journal.store import FILENAME, Store, open_read_only
from provgit.journal.suspensions import Suspensions
from provgit.journal.writes import AckedWrite, Writes

Ref = tuple[str, str]
T = TypeVar("T")

# journal meta: the journal's random identity (feed entry ids).
IDENTITY = "journal_id"


class JournalReader:
    """The journal of one state directory, to read. One instance per thread."""

    def __init__(self, store: Store) -> None:
        """Over an opened store; use `open_read_only` (or `Journal`) to get one."""
        self.path = store.path
        self._store = store
        # For tests that inspect it: the SQLite connection, or the PostgreSQL
        # journal's adapter (its connections are the pool's, lent per statement).
        self._db = getattr(store.db, "conn", store.db)
        self._meta = Meta(store)
        self._runs = Runs(store, self._meta)
        self._writes = Writes(store)
        self._pending = PendingUpdates(store)
        self._errors = DistributionErrors(store)
        self._statuses = Statuses(store)
        self._events = Events(store, self._meta)
        self._drift = DriftItems(store)
        self._suspensions = Suspensions(store, self._events)

    @staticmethod
    def open_read_only(path: str | Path) -> JournalReader:
        """Read the journal file `path` (or the one in the state directory `path`).

        Raises JournalError when there is none, it cannot be read, or it is
        from a newer provgit.
        """
        p = Path(path)
        return JournalReader(open_read_only(p / FILENAME if p.is_dir() else p))

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # meta
    def identity(self) -> str | None:
        """This journal's own random id (set when a writer first opens it):
        two journals of one network tell their events apart by it."""
        return self.meta(IDENTITY)

    def meta(self, k: str) -> str | None:
        return self._meta.get(k)

    def metas(self, prefix: str) -> dict[str, str]:
        """Every meta key starting with `prefix`, with its value."""
        return self._meta.prefixed(prefix)

    # runs
    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._runs.runs(limit)

    def unfinished_runs(self) -> list[dict[str, Any]]:
        """Runs with no finish, oldest first: running now, or dead (SIGKILL, power loss)."""
        return self._runs.unfinished_runs()

    # intents and outcomes
    def open_intents(self, element: str | None = None) -> list[Intent]:
        """Intents with no outcome: writes whose fate is unknown."""
        return self._writes.open_intents(element)

    def last_record_writes(self, element: str, refs: Iterable[Ref]) -> dict[Ref, LastWrite]:
        """See `Writes.last_record_writes`."""
        return self._writes.last_record_writes(element, refs)

    def last_revisions(self) -> dict[str, int]:
        """Per element, the last revision it answered a provgit write with."""
        return self._writes.last_revisions()

    def acknowledged_writes(self, element: str, refs: Iterable[Ref]) -> dict[Ref, AckedWrite]:
        """provgit's last acknowledged write of each of these records (any age)."""
        return self._writes.acknowledged_writes(element, refs)

    def acknowledged_writes_after(self, element: str, revision: int) -> dict[Ref, AckedWrite]:
        """provgit's acknowledged writes to `element` newer than `revision`."""
        return self._writes.acknowledged_writes_after(element, revision)

    # pending updates
    def pending(self, element: str | None = None) -> list[PendingUpdate]:
        return self._pending.pending(element)

    def pending_count(self) -> int:
        return self._pending.pending_count()

    # distribution errors
    def distribution_errors(
        self,
        *,
        element: str | None = None,
        form: str | None = None,
        error_type: str | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[DistributionError]:
        return self._errors.distribution_errors(
            element=element, form=form, error_type=error_type, ids=ids
        )

    def distribution_error_count(self) -> int:
        return self._errors.distribution_error_count()

    # sync status
    def element_statuses(self) -> dict[str, dict[str, Any]]:
        return self._statuses.element_statuses()

    def element_states(self) -> dict[str, tuple[str, str | None, float]]:
        """Each element's state as the last run left it: (state, detail, time)."""
        return self._statuses.element_states()

    def resource_statuses(self, not_completed_only: bool = False) -> list[dict[str, Any]]:
        return self._statuses.resource_statuses(not_completed_only)

    def status_history(self, scope: str, subject: str, limit: int = 50) -> list[dict[str, Any]]:
        return self._statuses.status_history(scope, subject, limit)

    # events and alarms
    def events(self, since_id: int = 0, limit: int = 1000) -> list[Event]:
        return self._events.events(since_id, limit)

    def recent_events(self, limit: int = 50) -> list[Event]:
        return self._events.recent_events(limit)

    def alarm_level(self) -> str | None:
        return self._events.alarm_level()

    # suspensions and drift
    def suspensions(self) -> dict[str, Suspension]:
        return self._suspensions.suspensions()

    def drift_items(self, element: str | None = None) -> list[DriftItem]:
        """See `DriftItems.drift_items`."""
        return self._drift.drift_items(element)


def read_journal(path: str | Path, read: Callable[[JournalReader], T], default: T) -> T:
    """`read` over a reader of the journal `path` (file or state directory), or
    `default` when there is none or it cannot be read (from a newer provgit,
    damaged, or locked past the busy timeout): for reports, which show what
    they can beside a run that is writing."""
    try:
        with JournalReader.open_read_only(path) as reader:
            return read(reader)
    except JournalError:
        return default
    except database_errors():
        return default
