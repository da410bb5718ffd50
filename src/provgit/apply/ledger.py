"""The run's journal writes: group-committed intents, outcomes, pending
updates, distribution errors and element statuses.

Journal commits fsync; they run on one side thread so the event loop (and
so every other element) keeps moving meanwhile. One thread keeps the SQLite
connection to one user at a time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from typing import Any, TypeVar

from provgit.apply import outcomes as oc
from provgit.apply import status as st
from provgit.journal import Intent, Journal, LeaseLost, fields_hash
from provgit.model.settings import Settings
from provgit.plan.model import Operation
from provgit.records import form_name

T = TypeVar("T")
Ref = tuple[str, str]
# (intent id, "ok"/"error", revision, error code, message), as the journal takes them.
OutcomeRow = tuple[int, str, int | None, str | None, str | None]


class Ledger:
    """What one run writes to the journal, and the thread that writes it."""

    def __init__(self, journal: Journal, settings: Settings) -> None:
        self.journal = journal
        self.settings = settings
        self.run_id = 0
        # What each element was before this run: going down or coming back is an event.
        self.before: dict[str, dict[str, Any]] = {}
        self._jx = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="journal")
        self._intent_queue: list[tuple[list[Intent], asyncio.Future[list[int]]]] = []
        self._intent_flusher: asyncio.Task[None] | None = None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on the journal thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._jx, lambda: fn(*args, **kwargs))

    def shutdown(self) -> None:
        self._jx.shutdown(wait=True)

    # ---- intents: group commit -------------------------------------------------

    async def record_intents(self, intents: list[Intent]) -> list[int]:
        """Group commit: intents of batches that are ready together share one fsync.

        A task of its own does the commits, so no batch waits while the
        intents of later batches are committed (that put batches out of plan
        order with one request in flight).
        """
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._intent_queue.append((intents, future))
        if self._intent_flusher is None or self._intent_flusher.done():
            self._intent_flusher = asyncio.create_task(self._flush_intents())
        return await future

    async def _flush_intents(self) -> None:
        while self._intent_queue:
            queued, self._intent_queue = self._intent_queue, []
            everything = [i for batch, _ in queued for i in batch]
            try:
                ids = await self.call(self.journal.record_intents, self.run_id, everything)
            except asyncio.CancelledError:
                for _, f in queued + self._intent_queue:
                    f.cancel()
                raise
            except LeaseLost as e:
                # Those elements moved to another replica: their batches fail,
                # the others' intents are written on the next turn.
                for batch, f in queued:
                    if batch and batch[0].element in e.elements and not f.done():
                        f.set_exception(LeaseLost(e.elements))
                kept = [(b, f) for b, f in queued if not f.done()]
                self._intent_queue = kept + self._intent_queue
                continue
            except Exception as e:  # each waiting batch fails with it (disk full, say)
                for _, f in queued:
                    if not f.done():
                        f.set_exception(e)
                continue
            at = 0
            for batch, f in queued:
                if not f.done():
                    f.set_result(ids[at : at + len(batch)])
                at += len(batch)

    # ---- records (on the journal thread, inside a transaction) ---------------

    def record_error(
        self, name: str, element_type: str, op: Operation, error_type: str, reason: str
    ) -> int:
        return self.journal.upsert_distribution_error(
            element=name,
            collection=op.collection,
            key=op.key,
            form=form_name(element_type, op.collection),
            kind=op.kind,
            resource=op.resource,
            action=op.action,
            error_type=error_type,
            reason=reason,
            detail=oc.detail(op),
            # What was attempted: the record is held until the config changes it.
            fields_hash=fields_hash(op.action, op.fields),
        )

    def record_pending(
        self, name: str, op: Operation, error: str, first: float | None = None
    ) -> None:
        """`first`: when a new pending update started waiting (a hold's clock; default now)."""
        next_retry = time.time() + self.settings.apply.retry_max_seconds
        self.journal.upsert_pending(
            name, op.collection, op.key, op.action, op.kind, op.resource, error, next_retry, first
        )

    def set_status(self, name: str, status: str, state: str, detail: str | None) -> None:
        """The element's status row, and an event when it goes down or comes back.

        Compared with what it was before this run, so a run that finds it as
        it was says nothing (one event per change, however many runs).
        """
        journal = self.journal
        with journal.transaction():
            was = self.before.get(name)
            was_down = was is not None and was["state"] in st.DOWN_STATES
            now_down = state in st.DOWN_STATES
            if now_down and not was_down:
                journal.add_event(
                    "element_down",
                    f"{name}: {status}: {detail or state}; its changes are kept as "
                    "pending updates until it is back",
                    element=name,
                    run_id=self.run_id,
                )
            elif was_down and not now_down:
                assert was is not None
                journal.add_event(
                    "element_up",
                    f"{name} is back (was {was['status']}); pending updates are delivered",
                    element=name,
                    run_id=self.run_id,
                )
            journal.set_element_status(name, status, state, self.run_id, detail)
            self.before[name] = {"status": status, "state": state}

    # ---- commits of the engine's steps -----------------------------------------

    async def outcomes(
        self,
        name: str,
        element_type: str,
        rows: list[OutcomeRow],
        landed: list[Ref],
        errors: list[tuple[Operation, oc.Rejected]],
        pending: list[tuple[Operation, oc.Undelivered]],
    ) -> list[int]:
        """A batch's answers, in one transaction; the ids of its distribution errors."""
        journal = self.journal

        def commit() -> list[int]:
            with journal.relaxed(), journal.transaction():
                journal.record_outcomes(rows, name)
                if landed:
                    journal.clear_pending(name, landed)
                    journal.clear_distribution_errors(name, landed)
                ids = [
                    self.record_error(name, element_type, op, r.error_type, r.reason)
                    for op, r in errors
                ]
                for op, u in pending:
                    self.record_pending(name, op, u.message)
                for op, r in errors:
                    if r.error_type == "conflict":
                        journal.add_event(
                            "drift",
                            f"{op.collection}/{op.key} on {name} was changed by another user",
                            element=name,
                            resource=f"{op.kind}/{op.resource}",
                            run_id=self.run_id,
                        )
                return ids

        return await self.call(commit)

    async def distribution_error(
        self, name: str, element_type: str, op: Operation, error_type: str, reason: str
    ) -> int:
        return await self.call(self.record_error, name, element_type, op, error_type, reason)

    async def pending(self, name: str, ops: list[Operation], messages: list[str]) -> None:
        def commit() -> None:
            with self.journal.transaction():
                for op, message in zip(ops, messages, strict=True):
                    self.record_pending(name, op, message)

        await self.call(commit)

    async def clear_settled(self, by_element: dict[str, list[Ref]]) -> None:
        """Records found in sync: their distribution errors and pending updates are over."""

        def commit() -> None:
            with self.journal.transaction():
                for e, keys in by_element.items():
                    self.journal.clear_distribution_errors(e, keys)
                    self.journal.clear_pending(e, keys)

        await self.call(commit)

    def interrupted(self, command: str) -> None:
        """Stopped (SIGTERM, or the watcher stopping): an interruption, not an error."""
        journal = self.journal
        run = next((r for r in journal.runs(5) if r["id"] == self.run_id), None)
        if run is None or run["finished"] is not None:
            return
        with journal.transaction():
            journal.finish_run(self.run_id, "interrupted", {"reason": "stopped by signal"})
            journal.add_event(
                "interrupted",
                f"run {self.run_id} ({command}) was stopped before it finished; "
                "writes already answered are journaled, the rest is planned again by the next run",
                run_id=self.run_id,
            )
