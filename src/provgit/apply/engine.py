"""Execute a Plan: elements in parallel, operations in plan order, durably.

How a run goes:
  1. Queue cap: more operations than `apply.queue_cap` refuses the run (nothing
     is dropped, nothing applied).
  2. For every element with work: take its file lock (another applier: refused,
     naming it), then, for a saved plan, compare the element's revision with
     the one the plan saw (moved: refused, "changed by another user; run plan
     again"). Any refusal stops the whole run unless `partial`.
  3. Workers, at most `element_concurrency` elements at once. On one element
     the plan's order is cut into waves: consecutive operations of the same
     collection and action, where none needs another of the same wave. A wave
     goes out as batches (several in flight); the next wave waits for it, so
     an add never races the modify that frees its DN.
  4. Per batch: intents are committed (fsync) first, then `write_batch`, then
     outcomes. After a SIGKILL an intent without an outcome is a write of
     unknown fate; the next run closes it once the element has been observed
     again (the plan it applies was computed from what the element holds), so
     nothing is lost or done twice, and creates are conditional ("only if
     absent"; an existing identical record counts as success).
  5. Element-wide transport trouble (offline, locked, unreachable) is retried
     with exponential backoff and jitter, then the element's remaining work is
     kept as pending updates. Per-record refusals and conflicts become
     distribution errors; whatever depends on them (transitively) is skipped.
     An element that could not even be observed gets its queued writes (the
     plan's, against what it last held) as pending updates at once, as SDS
     queues updates for an element that is down.
  6. Status per element and resource, alarms and events go to the journal;
     an element going down or coming back is an event, once per change.

A run that dies without finishing (SIGKILL, power loss) is marked
`interrupted` by the next one; a run cancelled (SIGTERM) marks itself so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import random
import signal
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from provgit.apply import drift_detect as drift
from provgit.apply import holds
from provgit.apply import status as st
from provgit.apply.admission import Admission, review
from provgit.apply.locks import ElementLock, LockHeld
from provgit.apply.progress import NoProgress, Progress
from provgit.apply.result import ApplyResult, ElementResult, OpResult, removed_resources
from provgit.apply.standing import settle_dead_runs, settle_removed_elements, update_alarm
from provgit.drivers.base import (
    ConflictError,
    Driver,
    ElementError,
    FeedTooOldError,
    NotFoundError,
    OfflineError,
    RefusedError,
    StoredRecord,
    TransportError,
    UnauthorizedError,
    WriteOp,
    WriteResult,
)
from provgit.journal import Intent, Journal, fields_hash
from provgit.model.settings import Settings
from provgit.plan.compute import field_changes
from provgit.plan.model import ElementPlan, Operation, Plan
from provgit.records import form_name
from provgit.secrets import SENSITIVE, SecretUnavailable, redact, scrub, with_values

# Test hook, read only from the environment: SIGKILL this process after the
# Nth element write call returns (before its outcome is journaled), or with
# "N:before", right before the Nth call is sent (after its intents). The crash
# tests use it to stop a real `provgit reconcile` at chosen instants.
KILL_HOOK_ENV = "PROVGIT_TEST_KILL_AFTER_WRITES"
DETAIL_FIELDS = 5
# Batches prepared beyond those in flight: enough that the next request goes
# out the moment a slot frees, few enough not to hold the loop.
PREPARED_AHEAD = 2
T = TypeVar("T")
Ref = tuple[str, str]


@dataclass(frozen=True)
class ApplyOptions:
    command: str = "apply"
    # A saved plan: refuse elements whose revision moved since it was made.
    check_stale: bool = True
    # Apply the elements that are not refused even when others are.
    partial: bool = False
    # The plan was computed from an observation made in this run: records with
    # no operation are in sync, so their pending updates and errors are over.
    fresh: bool = False
    # Only these (element, collection, key) records (errors retry/force).
    only: frozenset[tuple[str, str, str]] | None = None
    # Records whose open distribution errors this run retries rather than holds.
    release: frozenset[tuple[str, str, str]] = frozenset()
    # None: `apply.batch_size` / `apply.batches_in_flight` of the settings.
    batch_size: int | None = None
    batches_in_flight: int | None = None
    # The saved plan's checksum, recorded with the run (hashing a large plan
    # again here would cost more than applying it).
    plan_checksum: str | None = None
    # Records changed outside provgit (apply/drift.py): "report" holds them,
    # "correct" overwrites them; None: `drift.mode` of the settings, else correct.
    drift: drift.DriftMode | None = None
    # A person decided: write drifted records even in report mode.
    overwrite_drift: bool = False
    # Where "now" comes from for sync windows (apply/holds.py); tests pass a fake.
    clock: holds.Clock = holds.SYSTEM_CLOCK
    # apply --override-window --reason TEXT: go through closed windows (journaled).
    override_window: str | None = None


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _kill_hook() -> tuple[int, bool] | None:
    raw = os.environ.get(KILL_HOOK_ENV, "").strip()
    if not raw:
        return None
    n, _, when = raw.partition(":")
    try:
        return int(n), when == "before"
    except ValueError:
        return None


def _waves(ops: Sequence[Operation]) -> list[list[Operation]]:
    """Cut the plan order into waves whose operations may run side by side."""
    waves: list[list[Operation]] = []
    current: list[Operation] = []
    refs: set[Ref] = set()
    group: tuple[str, str] | None = None
    for op in ops:
        g = (op.collection, op.action)
        if current and (g != group or any(d in refs for d in op.depends_on)):
            waves.append(current)
            current, refs = [], set()
        group = g
        current.append(op)
        refs.add((op.collection, op.key))
    if current:
        waves.append(current)
    return waves


def _initial(ep: ElementPlan) -> ElementResult:
    """An element's result before anything is done: in sync if observed (until
    its work says otherwise), else down with the plan's reason."""
    if ep.observed:
        return ElementResult(ep.element, ep.element_type, st.SYNC_COMPLETED, "in_sync", ep.state)
    state = ep.state if ep.state in st.DOWN_STATES else "offline"
    return ElementResult(
        ep.element,
        ep.element_type,
        st.down_status(ep.element, state, ep.element_type),
        "unreachable",
        state,
        error=ep.error,
    )


def _has_secret(value: Any) -> bool:
    """Whether a record holds a secret reference (most do not: skip resolving them).

    Called once per write: plain loops, no generators (a third of the cost).
    """
    if type(value) is dict:
        if SENSITIVE in value:
            return True
        for v in value.values():
            if (type(v) is dict or type(v) is list) and _has_secret(v):
                return True
    elif type(value) is list:
        for v in value:
            if (type(v) is dict or type(v) is list) and _has_secret(v):
                return True
    return False


def _detail(op: Operation) -> dict[str, Any]:
    """The first fields of the record, redacted (SDS shows the record's first columns)."""
    source: Mapping[str, Any]
    if op.fields is not None:
        source = op.fields
    else:
        source = {k: v.get("before") for k, v in op.changes.items()}
    visible = {k: v for k, v in source.items() if not k.startswith("_") and v is not None}
    return dict(list(redact(visible).items())[:DETAIL_FIELDS])


def _backoff(settings: Settings, attempt: int) -> float:
    a = settings.apply
    # Full jitter on the upper half: spreads retries of many appliers apart.
    return float(min(a.retry_max_seconds, a.retry_base_seconds * 2**attempt)) * random.uniform(
        0.5, 1.0
    )


@dataclass
class _Element:
    """Working state of one element during the run."""

    plan: ElementPlan
    driver: Driver | None
    ops: list[Operation]
    result: ElementResult
    done: int = 0
    down: ElementError | None = None  # element-wide failure after retries
    blocked: dict[Ref, str] = field(default_factory=dict)
    held: dict[Ref, tuple[int, str | None]] = field(default_factory=dict)
    # Records of this element with a pending update or distribution error:
    # only those need clearing when a write lands.
    troubled: set[Ref] = field(default_factory=set)
    outcomes: dict[Ref, OpResult] = field(default_factory=dict)
    # Set when a suspension or a sync window held some of its writes.
    hold: holds.Hold | None = None


class Applier:
    def __init__(
        self,
        plan: Plan,
        drivers: Mapping[str, Driver],
        journal: Journal,
        settings: Settings,
        state_dir: Path,
        options: ApplyOptions,
        progress: Progress,
        unavailable: Mapping[str, str],
    ) -> None:
        self.plan = plan
        self.drivers = drivers
        self.journal = journal
        self.settings = settings
        self.state_dir = state_dir
        self.options = options
        self.progress = progress
        self.unavailable = unavailable
        self.run_id = 0
        self.locks: list[ElementLock] = []
        self.writes = 0
        self.kill = _kill_hook()
        self.batch_size = options.batch_size or settings.apply.batch_size
        self.in_flight = options.batches_in_flight or settings.apply.batches_in_flight
        # Journal commits fsync; doing them on one side thread keeps the event
        # loop (and so every other element) moving meanwhile. One thread keeps
        # the SQLite connection to one user at a time.
        self._jx = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="journal")
        self._intent_queue: list[tuple[list[Intent], asyncio.Future[list[int]]]] = []
        self._intent_flusher: asyncio.Task[None] | None = None
        self.drift = drift.Review()
        self.drift_held: dict[tuple[str, str, str], Any] = {}
        self.admission = Admission()

    async def _record_intents(self, intents: list[Intent]) -> list[int]:
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
                ids = await self._j(self.journal.record_intents, self.run_id, everything)
            except asyncio.CancelledError:
                for _, f in queued + self._intent_queue:
                    f.cancel()
                raise
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

    async def _j(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._jx, lambda: fn(*args, **kwargs))

    # ---- the run ---------------------------------------------------------------

    async def run(self) -> ApplyResult:
        cancelled = False
        try:
            result = await self._run()
            # Housekeeping, after the run's own commits and off the event loop;
            # a journal busy with another process just prunes next time.
            with contextlib.suppress(sqlite3.Error):
                days = self.settings.apply.journal_retention_days
                await self._j(self.journal.prune, days * 86400)
            return result
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            for lock in self.locks:
                lock.release()
            self._jx.shutdown(wait=True)
            # After the journal thread is done: one user of the connection at a
            # time. The watcher says itself how its runs end (it drained them).
            if cancelled and self.run_id and self.options.command != "watch":
                self._interrupted()

    def _interrupted(self) -> None:
        """Stopped (SIGTERM, or the watcher stopping): an interruption, not an error."""
        run = next((r for r in self.journal.runs(5) if r["id"] == self.run_id), None)
        if run is None or run["finished"] is not None:
            return
        with self.journal.transaction():
            self.journal.finish_run(self.run_id, "interrupted", {"reason": "stopped by signal"})
            self.journal.add_event(
                "interrupted",
                f"run {self.run_id} ({self.options.command}) was stopped before it finished; "
                "writes already answered are journaled, the rest is planned again by the next run",
                run_id=self.run_id,
            )

    def _selected(self, ep: ElementPlan) -> list[Operation]:
        return self._chosen(ep, ep.operations)

    def _queued(self, ep: ElementPlan) -> list[Operation]:
        """An element not observed: the writes to keep as pending updates."""
        return self._chosen(ep, ep.queued)

    def _chosen(self, ep: ElementPlan, ops: Sequence[Operation]) -> list[Operation]:
        only = self.options.only
        if only is None:
            return list(ops)
        return [op for op in ops if (ep.element, op.collection, op.key) in only]

    async def _run(self) -> ApplyResult:
        plan, journal = self.plan, self.journal
        host = os.uname().nodename
        self.run_id = journal.start_run(
            self.options.command,
            os.getpid(),
            host,
            self.options.plan_checksum,
            plan.commit,
        )
        await self._j(settle_dead_runs, journal, host, self.run_id)
        if self.options.only is None and plan.mode == "plan":
            # A plan of the whole config names every element it has (the
            # drivers too: an element is never dropped for want of one).
            configured = {ep.element for ep in plan.elements} | set(self.drivers)
            await self._j(settle_removed_elements, journal, configured, self.run_id)
        # What each element was before this run: going down or coming back is an event.
        self.before: dict[str, dict[str, Any]] = await self._j(journal.element_statuses)
        result = ApplyResult(self.run_id, plan.network, started=_now_iso())
        work = [
            _Element(ep, self.drivers.get(ep.element), self._selected(ep), _initial(ep))
            for ep in plan.elements
        ]
        # Drift is looked for before anything can refuse the run: it is found
        # (and recorded) whatever happens next.
        mode = drift.mode_for(self.settings, self.options.drift)
        self.drift = await self._j(
            drift.review,
            plan,
            journal,
            mode,
            # A plan observed in this run (not a saved one) shows which
            # records equal the config again.
            settle=self.options.fresh or not self.options.check_stale,
            run_id=self.run_id,
        )
        if mode == "report" and not self.options.overwrite_drift:
            self.drift_held = dict(self.drift.found)
        self.holds = holds.Holds(
            self.settings,
            await self._j(journal.suspensions),
            self.options.clock.now(),
            override=self.options.override_window is not None,
        )
        total = sum(len(w.ops) for w in work)
        cap = self.settings.apply.queue_cap
        if total > cap:
            result.refusal = (
                f"queue cap: {total} operations queued, more than apply.queue_cap ({cap}); "
                "nothing was applied or dropped. Apply in parts (--element) or raise "
                "apply.queue_cap in provgit.yaml"
            )
            for w in work:
                if w.ops and w.plan.observed:
                    # Not "Sync Completed": its changes were not applied.
                    w.result.status, w.result.outcome = st.refused("queue cap"), "refused"
            return self._finish(result, work)
        refused = await self._admit(work)
        if refused and not self.options.partial:
            names = ", ".join(w.plan.element for w in refused)
            result.refusal = f"refused for {names}; nothing was applied" + (
                " (pass --partial to apply the other elements)"
                if len(refused) < len([w for w in work if w.ops])
                else ""
            )
            for w in work:
                if w not in refused and w.ops and w.plan.observed:
                    w.result.outcome = "refused"
                    w.result.status = st.refused("run refused, not applied")
            return self._finish(result, work)
        runnable = [w for w in work if w.result.outcome != "refused"]
        # Whole or nothing: the secrets each resource needs, on all its elements,
        # resolve before the first write of the run (see apply/admission.py).
        self.admission = review(
            [(w.plan.element, w.ops) for w in runnable],
            [w.plan.element for w in runnable if w.driver is not None and w.plan.observed],
        )
        if self.options.only is not None:
            result.settled = await self._settle_unplanned(runnable)
        self.resource_targets: dict[tuple[str, str], set[str]] = {}
        for w in runnable:
            for op in w.ops if w.plan.observed else self._queued(w.plan):
                self.resource_targets.setdefault((op.kind, op.resource), set()).add(w.plan.element)
        self.resource_done: dict[tuple[str, str], int] = {r: 0 for r in self.resource_targets}
        self.resource_failed: set[tuple[str, str]] = set()
        if self.resource_targets:
            await self._j(
                journal.set_resource_statuses,
                [
                    (k, r, st.syncing(k, 0, len(t)), 0, len(t))
                    for (k, r), t in self.resource_targets.items()
                ],
                self.run_id,
                False,
            )
        gate = asyncio.Semaphore(self.settings.apply.element_concurrency)

        async def one(w: _Element) -> None:
            async with gate:
                await self._element(w)

        # Every element is seen through before a failure is raised: no write may
        # still be going out once the locks are released.
        outcomes = await asyncio.gather(*(one(w) for w in runnable), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return self._finish(result, work)

    async def _settle_unplanned(self, work: list[_Element]) -> list[tuple[str, str, str]]:
        """Chosen records (`only`) that the plan has nothing to do for, on an element
        it observed, are in sync already: their distribution errors are over."""
        assert self.options.only is not None
        settled: list[tuple[str, str, str]] = []
        for w in work:
            if not w.plan.observed:
                continue
            name = w.plan.element
            planned = {(op.collection, op.key) for op in w.plan.operations}
            settled += sorted(
                (e, c, k) for e, c, k in self.options.only if e == name and (c, k) not in planned
            )
        by_element: dict[str, list[tuple[str, str]]] = {}
        for e, c, k in settled:
            by_element.setdefault(e, []).append((c, k))

        def commit() -> None:
            with self.journal.transaction():
                for e, keys in by_element.items():
                    self.journal.clear_distribution_errors(e, keys)
                    self.journal.clear_pending(e, keys)

        if settled:
            await self._j(commit)
        return settled

    async def _admit(self, work: list[_Element]) -> list[_Element]:
        """Locks, plan refusals and staleness; returns the refused elements."""
        reasons: dict[str, str] = {}
        stale_checks: list[_Element] = []
        for w in work:
            if not w.ops:
                continue
            if w.plan.refusal is not None:
                reasons[w.plan.element] = w.plan.refusal
                continue
            lock = ElementLock(self.state_dir, w.plan.element)
            try:
                lock.acquire(self.options.command)
                self.locks.append(lock)
            except LockHeld as e:
                reasons[w.plan.element] = str(e)
                continue
            if self.options.check_stale and w.driver is not None:
                stale_checks.append(w)
        # One round trip for all elements, not one after the other.
        moved = await asyncio.gather(*(self._moved(w) for w in stale_checks))
        for w, reason in zip(stale_checks, moved, strict=True):
            if reason is not None:
                reasons[w.plan.element] = reason
        refused: list[_Element] = []
        for w in work:
            reason = reasons.get(w.plan.element)
            if reason is not None:
                w.result.outcome = "refused"
                w.result.refusal = reason
                w.result.status = st.refused("not applied")
                refused.append(w)
        return refused

    async def _moved(self, w: _Element) -> str | None:
        """Why a saved plan is stale for `w`, or None if its element has not moved."""
        assert w.driver is not None
        try:
            info = await w.driver.info()
        except ElementError:
            return None  # unreachable: its work becomes pending later
        if info.revision == w.plan.observed_revision:
            return None
        return (
            f"element {w.plan.element} changed by another user; run plan again "
            f"(plan saw revision {w.plan.observed_revision}, now {info.revision})"
        )

    # ---- one element ----------------------------------------------------------

    async def _element(self, w: _Element) -> None:
        name = w.plan.element
        journal = self.journal
        total = len(w.ops)
        self.progress.element_started(name, total)
        if not w.plan.observed or w.driver is None:
            await self._unreachable(w)
            self.progress.element_finished(name, w.result.status)
            return
        await self._j(self._set_status, name, st.synching(name), "running", None)
        # The plan in hand was computed from an observation newer than any
        # crashed write (or the staleness check proved nothing moved since), so
        # intents left open by a dead run are settled: their effect, if any, is
        # already part of what this plan was computed from.
        await self._j(journal.resolve_open_intents, name, "resolved by re-observation")
        for e in await self._j(journal.distribution_errors, element=name):
            w.troubled.add((e.collection, e.key))
            if (name, e.collection, e.key) not in self.options.release:
                w.held[(e.collection, e.key)] = (e.id, e.fields_hash)
        w.troubled.update((p.collection, p.key) for p in await self._j(journal.pending, name))
        await self._hold(w)
        for wave in _waves(w.ops):
            await self._wave(w, wave)
            self.progress.advanced(name, w.done, total)
        await self._close_element(w)
        self.progress.element_finished(name, w.result.status)

    async def _wave(self, w: _Element, wave: list[Operation]) -> None:
        """Send one wave as batches, several in flight, preparing them as they go.

        Batches are prepared (skips, holds, secrets, intents) only a few ahead
        of the ones in flight: preparing a wave of 10,000 writes up front held
        the event loop, and so every element, for 200-300 ms at each wave
        boundary (measured in benchmarks/bench_apply.py).
        """
        flight = asyncio.Semaphore(self.in_flight)
        ahead = asyncio.Semaphore(self.in_flight + PREPARED_AHEAD)
        tasks: list[asyncio.Task[None]] = []
        sendable: list[tuple[Operation, WriteOp]] = []
        # Once the element is down for good, the rest waits for the next run.
        undelivered: list[Operation] = []

        # Set when a batch fails outright: the batches already prepared are not
        # sent either (their intents stay open, settled by the next run).
        halted = asyncio.Event()

        def on_done(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                halted.set()

        async def dispatch() -> None:
            nonlocal sendable
            await ahead.acquire()
            batch, sendable = sendable, []
            task = asyncio.create_task(self._send(w, batch, flight, ahead, halted))
            task.add_done_callback(on_done)
            tasks.append(task)

        def broken() -> BaseException | None:
            """The first batch failure (a journal error, a bug), to raise."""
            for t in tasks:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    return t.exception()
            return None

        try:
            for op in wave:
                if halted.is_set():
                    break
                verdict = self.admission.verdict(w.plan.element, op)
                if verdict is not None:
                    if verdict.error_type is not None:
                        await self._distribution_error(w, op, verdict.error_type, verdict.message)
                    else:
                        self._settle(w, op, verdict.status, message=verdict.message)
                    continue
                if w.down is not None:
                    undelivered.append(op)
                    continue
                ref = (op.collection, op.key)
                # Drift first: a drifted record waits for a person, whatever it depends on.
                drifted = self.drift_held.get((w.plan.element, *ref)) if self.drift_held else None
                if drifted is not None:
                    self._settle(w, op, "held", message=drift.hold_message(drifted))
                    if op.action != "add":
                        # The record is there (as someone left it): what
                        # refers to it can still be written.
                        w.blocked.pop(ref, None)
                    continue
                blocker = next((d for d in op.depends_on if d in w.blocked), None)
                if blocker is not None:
                    self._settle(
                        w, op, "skipped", message=f"skipped: depends on {blocker[0]}/{blocker[1]}"
                    )
                    continue
                held = w.held.get(ref)
                if held is not None and held[1] == fields_hash(op.action, op.fields):
                    self._settle(
                        w,
                        op,
                        "held",
                        message=f"held by distribution error {held[0]} "
                        f"(provgit errors retry {held[0]})",
                        error_id=held[0],
                    )
                    continue
                try:
                    sendable.append((op, self._write_op(op)))
                except SecretUnavailable as e:
                    await self._distribution_error(w, op, "secret", str(e))
                    continue
                if len(sendable) >= self.batch_size:
                    await dispatch()
            if sendable and not halted.is_set():
                await dispatch()
        finally:
            # Every batch already sent is seen through, even if preparing or
            # another batch failed; then the first failure is raised.
            await asyncio.gather(*tasks, return_exceptions=True)
        failure = broken()
        if failure is not None:
            raise failure
        if undelivered:
            assert w.down is not None
            await self._pending(w, undelivered, w.down)

    async def _hold(self, w: _Element) -> None:
        """Writes a suspension or a sync window holds: pending updates naming it
        (their dependents are then skipped, and planned again next run)."""
        name, etype = w.plan.element, w.plan.element_type
        held: list[tuple[Operation, holds.Hold]] = []
        overridden: set[str] = set()
        for op in w.ops:
            h = self.holds.hold(name, etype, op.kind)
            if h is not None:
                held.append((op, h))
            elif self.options.override_window is not None:
                closed = self.holds.window(name, etype, op.kind)
                if closed is not None and closed.window is not None:
                    overridden.add(closed.window)
        if not held and not overridden:
            return
        journal = self.journal
        windows = sorted({h.window for _, h in held if h.window})
        # One event when an element starts being held, not one per retry run.
        was = (self.before.get(name) or {}).get("status") or ""
        if was.startswith("Held by window "):
            windows = []

        def commit() -> None:
            with journal.transaction():
                for op, h in held:
                    self._record_pending(name, op, h.reason)
                if windows:
                    journal.add_event(
                        "window_held",
                        f"{name}: {len(held)} change(s) held by window {', '.join(windows)}; "
                        "they go out when it opens",
                        element=name,
                        run_id=self.run_id,
                    )
                if overridden:
                    journal.add_event(
                        "window_override",
                        f"{name}: window {', '.join(sorted(overridden))} overridden: "
                        f"{self.options.override_window}",
                        element=name,
                        run_id=self.run_id,
                    )

        await self._j(commit)
        for op, h in held:
            self._settle(w, op, "pending", message=h.reason, error_type=h.source)
        if held:
            w.hold = held[0][1]
        taken = {(op.collection, op.key) for op, _ in held}
        w.ops = [op for op in w.ops if (op.collection, op.key) not in taken]

    def _write_op(self, op: Operation) -> WriteOp:
        if op.action == "delete":
            return WriteOp("delete", op.collection, op.key, None, op.if_revision)
        # Secrets are resolved here, right before the write, and nowhere else.
        fields = op.fields or {}
        if _has_secret(fields):
            fields = with_values(fields)
        return WriteOp("put", op.collection, op.key, fields, op.if_revision)

    async def _unreachable(self, w: _Element) -> None:
        """An element not observed: its status says why (stopped, offline, token
        refused...), and the writes it needs are pending updates from now on."""
        name = w.plan.element
        why = w.plan.error or self.unavailable.get(name) or "not observed"
        state = w.plan.state if w.plan.state in st.DOWN_STATES else "offline"
        if state == "offline" and w.driver is not None:
            # "offline" covers both an element that answers its services are
            # stopped and one that does not answer at all: ask which.
            try:
                info = await asyncio.wait_for(w.driver.info(), 10)
                if info.state == "offline":
                    state = "stopped"
            except (ElementError, TimeoutError):
                pass
            except Exception:  # a driver bug: still only this element's problem
                pass
        status = st.down_status(name, state, w.plan.element_type)
        w.result.status, w.result.state = status, state
        w.result.outcome = "unreachable"
        w.result.error = why
        queued = self._queued(w.plan)
        for op in queued:
            self._settle(w, op, "pending", message=why, error_type=state)
        rows = self._resource_rows(w)
        # The queued writes are all this element is owed now (planned against
        # what it last held): an older pending update not among them was for
        # a change the config no longer wants.
        replace = self.options.fresh and self.options.only is None and bool(queued)
        journal = self.journal

        def commit() -> None:
            with journal.transaction():
                if replace:
                    keep = {(op.collection, op.key) for op in queued}
                    journal.clear_pending(
                        name,
                        [
                            (p.collection, p.key)
                            for p in journal.pending(name)
                            if (p.collection, p.key) not in keep
                        ],
                    )
                for op in queued:
                    self._record_pending(name, op, why)
                if rows:
                    journal.set_resource_statuses(rows, self.run_id, history=False)
                self._set_status(name, status, state, why)

        await self._j(commit)

    def _set_status(self, name: str, status: str, state: str, detail: str | None) -> None:
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

    async def _send(
        self,
        w: _Element,
        batch: list[tuple[Operation, WriteOp]],
        flight: asyncio.Semaphore | None = None,
        prepared: asyncio.Semaphore | None = None,
        halted: asyncio.Event | None = None,
    ) -> None:
        try:
            name = w.plan.element
            if w.down is not None:
                await self._pending(w, [op for op, _ in batch], w.down)
                return
            intents = [
                # The digest of what is written: status tells provgit's own
                # writes from out-of-band edits by it (report.derive).
                Intent(
                    name,
                    op.collection,
                    op.key,
                    op.action,
                    op.if_revision,
                    None if op.action == "delete" else fields_hash(op.action, op.fields),
                )
                for op, _ in batch
            ]
            # Intents are committed before the batch waits for its slot, and
            # outcomes after it gives the slot back: both overlap the batches in
            # flight instead of adding to every request's round trip.
            ids = await self._record_intents(intents)
            assert w.driver is not None
            results: dict[int, WriteResult] = {}
            async with flight or contextlib.nullcontext():
                if halted is not None and halted.is_set():
                    return
                await self._transmit(w, batch, results)
            await self._settle_batch(w, batch, ids, results)
        finally:
            if prepared is not None:
                prepared.release()

    async def _transmit(
        self, w: _Element, batch: list[tuple[Operation, WriteOp]], results: dict[int, WriteResult]
    ) -> None:
        assert w.driver is not None
        if w.down is not None:
            # Went down while this batch waited: it stays pending (its intents close).
            for i in range(len(batch)):
                results[i] = WriteResult(ok=False, error=w.down)
            return
        remaining = list(range(len(batch)))
        attempt = 0
        while remaining:
            self.writes += 1
            n = self.writes
            if self.kill is not None and self.kill == (n, True):
                os.kill(os.getpid(), signal.SIGKILL)
            try:
                answers = await w.driver.write_batch([batch[i][1] for i in remaining])
            except ElementError as e:
                answers = None
                error: ElementError = e
            except Exception as e:  # a driver bug must not take the other elements down
                answers = None
                error = TransportError(f"driver error: {type(e).__name__}: {e}")
            if self.kill is not None and self.kill == (n, False):
                os.kill(os.getpid(), signal.SIGKILL)
            retry: list[int] = []
            if answers is None:
                if not error.retryable:
                    for i in remaining:
                        results[i] = WriteResult(ok=False, error=error)
                    break
                retry = remaining
            else:
                for i, answer in zip(remaining, answers, strict=True):
                    if answer.ok or answer.error is None or not answer.error.retryable:
                        results[i] = answer
                    else:
                        retry.append(i)
                        error = answer.error
            if not retry:
                break
            if attempt >= self.settings.apply.retry_attempts or w.down is not None:
                w.down = w.down or error
                for i in retry:
                    results[i] = WriteResult(ok=False, error=error)
                break
            await asyncio.sleep(_backoff(self.settings, attempt))
            attempt += 1
            remaining = retry

    async def _settle_batch(
        self,
        w: _Element,
        batch: list[tuple[Operation, WriteOp]],
        ids: list[int],
        results: dict[int, WriteResult],
    ) -> None:
        name = w.plan.element
        rows: list[tuple[int, str, int | None, str | None, str | None]] = []
        landed: list[Ref] = []
        pending: list[tuple[Operation, str, str]] = []  # (op, error code, message)
        errors: list[tuple[Operation, str, str, str]] = []
        for i, (op, _write) in enumerate(batch):
            r = results.get(i) or WriteResult(ok=False, error=TransportError("no answer"))
            err = r.error
            if not r.ok and isinstance(err, ConflictError) and op.if_revision is None:
                revision = await self._identical(w, op)
                if revision is not None:
                    r, err = WriteResult(ok=True, revision=revision), None
            if not r.ok and isinstance(err, NotFoundError) and op.action == "delete":
                r, err = WriteResult(ok=True), None  # already gone: what we wanted
            if r.ok:
                rows.append((ids[i], "ok", r.revision, None, None))
                if (op.collection, op.key) in w.troubled:
                    landed.append((op.collection, op.key))
                self._settle(w, op, "ok", revision=r.revision)
                continue
            assert err is not None
            # An element may quote what it was sent: no secret of this record
            # goes on into the journal, the status or a log.
            message = scrub(err.message, op.fields)
            rows.append((ids[i], "error", None, err.code, message))
            if err.retryable:
                pending.append((op, err.code, message))
            elif isinstance(err, ConflictError):
                errors.append((op, "conflict", "changed by another user; refresh", message))
            elif isinstance(err, NotFoundError):
                errors.append((op, "not_found", "deleted by another user; refresh", message))
            elif isinstance(err, RefusedError):
                reason = "; ".join(
                    (f"{r.field}: " if r.field else "") + r.reason for r in err.refusals
                )
                errors.append((op, "refused", scrub(reason, op.fields) or message, message))
            else:
                errors.append((op, err.code, message, message))
        journal = self.journal

        def commit() -> list[int]:
            with journal.relaxed(), journal.transaction():
                journal.record_outcomes(rows)
                if landed:
                    journal.clear_pending(name, landed)
                    journal.clear_distribution_errors(name, landed)
                ids_out = [
                    self._record_error(name, w, op, t, reason) for op, t, reason, _ in errors
                ]
                for op, _code, message in pending:
                    self._record_pending(name, op, message)
                for op, t, _reason, _ in errors:
                    if t == "conflict":
                        journal.add_event(
                            "drift",
                            f"{op.collection}/{op.key} on {name} was changed by another user",
                            element=name,
                            resource=f"{op.kind}/{op.resource}",
                            run_id=self.run_id,
                        )
            return ids_out

        error_ids = await self._j(commit)
        for (op, t, reason, _), eid in zip(errors, error_ids, strict=True):
            self._settle(w, op, "failed", message=reason, error_type=t, error_id=eid)
        for op, code, message in pending:
            self._settle(w, op, "pending", message=message, error_type=code)

    def _record_error(
        self, name: str, w: _Element, op: Operation, error_type: str, reason: str
    ) -> int:
        return self.journal.upsert_distribution_error(
            element=name,
            collection=op.collection,
            key=op.key,
            form=form_name(w.plan.element_type, op.collection),
            kind=op.kind,
            resource=op.resource,
            action=op.action,
            error_type=error_type,
            reason=reason,
            detail=_detail(op),
            # What was attempted: the record is held until the config changes it.
            fields_hash=fields_hash(op.action, op.fields),
        )

    def _record_pending(self, name: str, op: Operation, error: str) -> None:
        next_retry = time.time() + self.settings.apply.retry_max_seconds
        self.journal.upsert_pending(
            name, op.collection, op.key, op.action, op.kind, op.resource, error, next_retry
        )

    async def _distribution_error(
        self, w: _Element, op: Operation, error_type: str, reason: str
    ) -> None:
        reason = scrub(reason, op.fields)
        eid = await self._j(self._record_error, w.plan.element, w, op, error_type, reason)
        self._settle(w, op, "failed", message=reason, error_type=error_type, error_id=eid)

    async def _pending(self, w: _Element, ops: list[Operation], e: ElementError) -> None:
        name = w.plan.element

        messages = [scrub(e.message, op.fields) for op in ops]

        def commit() -> None:
            with self.journal.transaction():
                for op, message in zip(ops, messages, strict=True):
                    self._record_pending(name, op, message)

        await self._j(commit)
        for op, message in zip(ops, messages, strict=True):
            self._settle(w, op, "pending", message=message, error_type=e.code)

    async def _identical(self, w: _Element, op: Operation) -> int | None:
        """A create that met an existing record: its revision if it holds what we want.

        The record did not exist when the plan observed the element, so it was
        written since: the change feed from the plan's revision has it.
        """
        assert w.driver is not None
        since = w.plan.observed_revision or 0
        found: StoredRecord | None = None
        try:
            while True:
                feed = await w.driver.changes(since)
                for c in feed.changes:
                    if (c.collection, c.key) == (op.collection, op.key):
                        found = (
                            None
                            if c.op == "delete"
                            else StoredRecord(
                                c.collection, c.key, c.fields or {}, c.record_revision
                            )
                        )
                if not feed.changes or feed.revision <= since:
                    break
                since = feed.revision
        except (FeedTooOldError, ElementError):
            return None
        except Exception:  # a driver bug: then it is not known to be identical
            return None
        if found is None or field_changes(op.fields or {}, found.fields):
            return None
        return found.revision

    def _settle(
        self,
        w: _Element,
        op: Operation,
        status: Any,
        *,
        message: str | None = None,
        error_type: str | None = None,
        error_id: int | None = None,
        revision: int | None = None,
    ) -> None:
        result = OpResult(
            op.action,
            op.collection,
            op.key,
            op.kind,
            op.resource,
            status,
            message,
            error_type,
            error_id,
            revision,
        )
        ref = (op.collection, op.key)
        w.outcomes[ref] = result
        w.result.operations.append(result)
        w.done += 1
        if status != "ok":
            w.blocked[ref] = status

    async def _close_element(self, w: _Element) -> None:
        name = w.plan.element
        counts = w.result.counts()
        problems = sum(v for k, v in counts.items() if k != "ok")
        if w.down is not None and counts["ok"] == 0 and problems:
            if isinstance(w.down, OfflineError):
                w.result.state = "stopped"
            elif isinstance(w.down, TransportError):
                w.result.state = "offline"
            elif isinstance(w.down, UnauthorizedError):
                w.result.state = "unauthorized"
            else:
                w.result.state = w.down.code
            w.result.status = (
                st.down_status(name, w.result.state, w.plan.element_type)
                if w.result.state in ("stopped", "offline", "unauthorized")
                else st.failed(name)
            )
            w.result.outcome = "unreachable"
            w.result.error = w.down.message
        elif w.hold is not None and problems == counts["pending"] + counts["skipped"]:
            # Nothing failed: the rest waits for the suspension or window.
            w.result.status, w.result.outcome = w.hold.reason, "held"
        elif problems:
            w.result.status, w.result.outcome = st.failed(name), "failed"
        else:
            w.result.status = st.SYNC_COMPLETED
            w.result.outcome = "applied" if w.ops else "in_sync"
        rows = self._resource_rows(w)
        fresh = self.options.fresh and self.options.only is None
        in_plan = {(op.collection, op.key) for op in w.plan.operations}
        journal = self.journal
        status = w.result.status
        overwritten = [
            (c, k)
            for (e, c, k) in self.drift.found
            if e == name and getattr(w.outcomes.get((c, k)), "status", None) == "ok"
        ]
        written = [r.revision for r in w.result.operations if r.status == "ok"]

        def commit() -> None:
            # Relaxed: the run's last commit (in `_finish`) makes it durable, and
            # a status lost to a power cut is derived again by the next run.
            with journal.relaxed(), journal.transaction():
                if rows:
                    journal.set_resource_statuses(rows, self.run_id, history=False)
                if fresh:
                    # Observed just now and planned with nothing to do: any
                    # pending update or error of a record not in the plan is over.
                    stale_p = [
                        (p.collection, p.key)
                        for p in journal.pending(name)
                        if (p.collection, p.key) not in in_plan
                    ]
                    stale_e = [
                        (e.collection, e.key)
                        for e in journal.distribution_errors(element=name)
                        if (e.collection, e.key) not in in_plan
                    ]
                    journal.clear_pending(name, stale_p)
                    journal.clear_distribution_errors(name, stale_e)
                self._set_status(name, status, w.result.state, w.result.error)
                if overwritten:
                    drift.corrected(journal, name, overwritten, self.run_id)
                drift.set_baseline(journal, name, w.plan.observed_revision, written)
                if w.ops or w.result.outcome != "in_sync":
                    ok = w.result.outcome in ("applied", "in_sync")
                    c = counts
                    journal.add_event(
                        "sync_completed" if ok else "sync_failed",
                        f"{name}: {status} ({c['ok']} applied, {c['failed']} failed, "
                        f"{c['pending']} pending, {c['skipped']} skipped, {c['held']} held)",
                        element=name,
                        run_id=self.run_id,
                    )

        await self._j(commit)

    def _resource_rows(self, w: _Element) -> list[tuple[str, str, str, int, int]]:
        """Resources: one more target done (or failed) for every resource of `w`."""
        by_resource: dict[tuple[str, str], bool] = {}
        for r in w.result.operations:
            key = (r.kind, r.resource)
            by_resource[key] = by_resource.get(key, True) and r.status == "ok"
        rows = []
        for key, ok in by_resource.items():
            if ok:
                self.resource_done[key] += 1
            else:
                self.resource_failed.add(key)
            total = len(self.resource_targets[key])
            rows.append(
                (
                    *key,
                    st.syncing(key[0], self.resource_done[key], total),
                    self.resource_done[key],
                    total,
                )
            )
        return rows

    # ---- the end ---------------------------------------------------------------

    def _finish(self, result: ApplyResult, work: list[_Element]) -> ApplyResult:
        journal = self.journal
        result.elements = [w.result for w in work]
        result.drift = self._drift_report(work)
        with journal.transaction():
            if result.refusal is not None:
                # Nothing was applied: an element with work says so, one not
                # observed says why; the others keep what they said before.
                for w in work:
                    if w.result.outcome == "refused" or not w.plan.observed:
                        self._set_status(
                            w.plan.element,
                            w.result.status,
                            w.result.state,
                            w.result.refusal or w.result.error or result.refusal,
                        )
            for w in work:
                if w.result.outcome == "refused" and w.result.refusal:
                    journal.add_event(
                        "refused", w.result.refusal, element=w.plan.element, run_id=self.run_id
                    )
            if result.refusal is not None and not any(w.result.refusal for w in work):
                journal.add_event("refused", result.refusal, run_id=self.run_id)
            for (kind, resource), els in sorted(removed_resources(result.elements).items()):
                # It leaves the status (which lists what the config has); the
                # feed says where it went.
                journal.add_event(
                    "resource_removed",
                    f"{kind}/{resource} removed from {', '.join(els)}",
                    resource=f"{kind}/{resource}",
                    run_id=self.run_id,
                )
            targets = getattr(self, "resource_targets", {})
            rows = []
            for key, t in targets.items():
                done = self.resource_done[key]
                final = (
                    st.SYNC_COMPLETED
                    if done == len(t) and key not in self.resource_failed
                    else st.SYNC_INCOMPLETE
                )
                rows.append((*key, final, done, len(t)))
                if final != st.SYNC_COMPLETED:
                    result.resources[f"{key[0]}/{key[1]}"] = {
                        "status": final,
                        "completed": done,
                        "total": len(t),
                    }
            if rows:
                journal.set_resource_statuses(rows, self.run_id)
            # Resources left incomplete by earlier runs and untouched now are in
            # sync, if every element was seen.
            if (
                self.options.fresh
                and self.options.only is None
                and result.refusal is None
                and all(w.plan.observed for w in work)
            ):
                leftover = [
                    (r["kind"], r["resource"], st.SYNC_COMPLETED, r["total"], r["total"])
                    for r in journal.resource_statuses(not_completed_only=True)
                    if (r["kind"], r["resource"]) not in targets
                ]
                journal.set_resource_statuses(leftover, self.run_id)
            result.distribution_errors = journal.distribution_error_count()
            result.pending_updates = journal.pending_count()
            level = update_alarm(journal, self.settings.alarms, self.run_id)
            result.alarm = level
            result.finished = _now_iso()
            journal.finish_run(
                self.run_id,
                "refused" if result.refusal else result.overall,
                {"counts": result.counts(), "exit_code": result.exit_code()},
            )
        return result

    def _drift_report(self, work: list[_Element]) -> list[dict[str, Any]]:
        """The drift this run found, and what became of each record."""
        outcomes = {w.plan.element: w.outcomes for w in work}
        new = {(d.element, d.collection, d.key) for d in self.drift.new}
        out = []
        for ref, d in sorted(self.drift.found.items()):
            r = outcomes.get(d.element, {}).get((d.collection, d.key))
            outcome = (
                "corrected"
                if r is not None and r.status == "ok"
                else "held"
                if ref in self.drift_held and r is not None and r.status == "held"
                else "reported"
            )
            out.append({**d.to_json(), "new": ref in new, "outcome": outcome})
        return out


async def apply_plan(
    plan: Plan,
    drivers: Mapping[str, Driver],
    journal: Journal,
    settings: Settings,
    state_dir: Path,
    options: ApplyOptions = ApplyOptions(),
    progress: Progress | None = None,
    unavailable: Mapping[str, str] | None = None,
) -> ApplyResult:
    """Apply `plan` through `drivers`, journaling everything. Never raises for an
    element's failure: it is in the result."""
    applier = Applier(
        plan,
        drivers,
        journal,
        settings,
        state_dir,
        options,
        progress or NoProgress(),
        unavailable or {},
    )
    return await applier.run()
