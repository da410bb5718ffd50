"""`Journal`: the journal of one state directory, read and written.

A small facade over one module per table (runs, writes: intents and
outcomes, pending, dist_errors, statuses, events, drift, suspensions, meta),
the schema and its migrations (schema.py) and the file (store.py); it keeps
the method names the rest of provgit calls. Reading only: `JournalReader`
(reader.py), which `Journal` extends.

Every method commits on its own unless called inside `transaction()`, which
groups them into one commit (one fsync), so a batch of 200 writes costs two
fsyncs, not 400.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from provgit.journal.backend import database_errors
from provgit.journal.leases import Fences, LeaseLost
from provgit.journal.reader import IDENTITY, JournalReader, Ref, read_journal
from provgit.journal.rows import (
    EVENT_TYPES,
    NETWORK,
    DistributionError,
    DriftItem,
    Event,
    Intent,
    LastWrite,
    PendingUpdate,
    Suspension,
    fields_hash,
)
from provgit.journal.schema import SCHEMA_VERSION, JournalError
from provgit.journal.store import FILENAME, journal_exists, open_writable
from provgit.journal.writes import last_writes

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
    "last_writes",
    "read_journal",
]


class Journal(JournalReader):
    """The journal at `path`, created or migrated on opening. One instance per thread."""

    def __init__(self, path: str | Path, patient: bool = True) -> None:
        super().__init__(open_writable(Path(path), patient))
        if self.identity() is None:
            # Best effort: a journal that cannot take the write now (disk
            # full, read-only) still opens; its feed ids go without it.
            with suppress(*database_errors()):
                self.set_meta(IDENTITY, secrets.token_hex(8))

    @classmethod
    def open(cls, state_dir: str | Path, patient: bool = True) -> Journal:
        """`patient=False` (the watcher): on PostgreSQL, no waiting out
        reconnection retries; a dropped connection is the caller's error."""
        return cls(Path(state_dir) / FILENAME, patient)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group calls into one commit; nested uses join the outer one."""
        with self._store.transaction():
            yield

    @contextmanager
    def relaxed(self) -> Iterator[None]:
        """Commits inside skip the fsync (see `Store.relaxed`)."""
        with self._store.relaxed():
            yield

    def set_meta(self, k: str, v: str) -> None:
        self._meta.set(k, v)

    # runs
    def start_run(
        self,
        command: str,
        pid: int,
        host: str,
        plan_checksum: str | None = None,
        commit: str | None = None,
    ) -> int:
        return self._runs.start_run(command, pid, host, plan_checksum, commit)

    def finish_run(self, run_id: int, outcome: str, summary: dict[str, Any]) -> None:
        self._runs.finish_run(run_id, outcome, summary)

    def prune(
        self, older_than_seconds: float, every_seconds: float = 3600.0, chunk: int = 20_000
    ) -> dict[str, int]:
        """See `Runs.prune`."""
        return self._runs.prune(older_than_seconds, every_seconds, chunk)

    # intents and outcomes
    def record_intents(self, run_id: int, intents: Sequence[Intent]) -> list[int]:
        """Write intents; returns their ids in order. Commit (fsync) before writing!"""
        return self._writes.record_intents(run_id, intents)

    def record_outcomes(
        self,
        outcomes: Iterable[tuple[int, str, int | None, str | None, str | None]],
        element: str | None = None,
    ) -> None:
        """(intent id, outcome, revision, error type, message) rows (of `element`'s intents)."""
        self._writes.record_outcomes(outcomes, element)

    def fence_by(self, fences: Fences, idle_seconds: float) -> None:
        """Replicas: writes about an element from now on need its lease
        (`Store.fenced`), and a transaction left idle `idle_seconds` (a process
        stopped mid-way) is ended by the server, so its locks never hold up the
        element's next holder."""
        from provgit.journal.postgres import PostgresDb

        if not isinstance(self._store.db, PostgresDb):
            return  # one writer per SQLite file: nothing to fence
        self._store.fences = fences
        self._store.db.session(
            f"SET idle_in_transaction_session_timeout = {max(100, int(idle_seconds * 1000))}"
        )

    def resolve_open_intents(self, element: str, note: str) -> int:
        """Close the unknown intents of `element` (after it was observed again)."""
        return self._writes.resolve_open_intents(element, note)

    # pending updates
    def upsert_pending(
        self,
        element: str,
        collection: str,
        key: str,
        action: str,
        kind: str,
        resource: str,
        error: str,
        next_retry: float,
        first: float | None = None,
    ) -> None:
        self._pending.upsert_pending(
            element, collection, key, action, kind, resource, error, next_retry, first
        )

    def clear_pending(self, element: str, keys: Iterable[Ref] | None = None) -> int:
        """Forget pending updates of `element` (all of them when `keys` is None)."""
        return self._pending.clear_pending(element, keys)

    # distribution errors
    def upsert_distribution_error(
        self,
        *,
        element: str,
        collection: str,
        key: str,
        form: str,
        kind: str,
        resource: str,
        action: str,
        error_type: str,
        reason: str,
        detail: dict[str, Any],
        fields_hash: str | None,
    ) -> int:
        """Record a refusal/conflict; a repeat of the same record keeps its action id."""
        return self._errors.upsert_distribution_error(
            element=element,
            collection=collection,
            key=key,
            form=form,
            kind=kind,
            resource=resource,
            action=action,
            error_type=error_type,
            reason=reason,
            detail=detail,
            fields_hash=fields_hash,
        )

    def clear_distribution_errors(self, element: str, keys: Iterable[Ref]) -> int:
        return self._errors.clear_distribution_errors(element, keys)

    def delete_distribution_errors(self, ids: Sequence[int]) -> int:
        return self._errors.delete_distribution_errors(ids)

    def set_distribution_error_status(self, ids: Sequence[int], status: str) -> None:
        self._errors.set_distribution_error_status(ids, status)

    # sync status
    def set_element_status(
        self, element: str, status: str, state: str, run_id: int | None, detail: str | None = None
    ) -> None:
        self._statuses.set_element_status(element, status, state, run_id, detail)

    def set_resource_statuses(
        self,
        rows: Iterable[tuple[str, str, str, int, int]],
        run_id: int | None,
        history: bool = True,
    ) -> None:
        """(kind, resource, status, completed, total) rows; history records changes only."""
        self._statuses.set_resource_statuses(rows, run_id, history)

    # events and alarms
    def add_event(
        self,
        type_: str,
        message: str,
        *,
        element: str | None = None,
        resource: str | None = None,
        run_id: int | None = None,
    ) -> int:
        return self._events.add_event(
            type_, message, element=element, resource=resource, run_id=run_id
        )

    def set_alarm_level(self, level: str | None) -> None:
        self._events.set_alarm_level(level)

    # suspensions
    def suspend(self, element: str, reason: str, who: str, now: float) -> Suspension:
        """See `Suspensions.suspend`."""
        return self._suspensions.suspend(element, reason, who, now)

    def resume(self, element: str, who: str) -> Suspension | None:
        """See `Suspensions.resume`."""
        return self._suspensions.resume(element, who)

    # drift
    def upsert_drift(self, items: Iterable[DriftItem]) -> list[DriftItem]:
        """See `DriftItems.upsert_drift`."""
        return self._drift.upsert_drift(items)

    def clear_drift(self, element: str, keys: Iterable[Ref]) -> list[DriftItem]:
        """Close these drift items of `element`; returns those that were open."""
        return self._drift.clear_drift(element, keys)

    def capture_drift(self, elements: Iterable[str], note: str) -> list[DriftItem]:
        """See `DriftItems.capture_drift`."""
        return self._drift.capture_drift(elements, note)

    def reject_drift(self, note: str) -> list[DriftItem]:
        """See `DriftItems.reject_drift`."""
        return self._drift.reject_drift(note)
