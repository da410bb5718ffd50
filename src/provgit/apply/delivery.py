"""One element's part of a run: its holds, its waves as batches, its end.

Per batch: intents are committed first (apply/ledger.py), then the batch is
sent (apply/transport.py), then its answers are classified
(apply/outcomes.py) and journaled as outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provgit.apply import drift_detect as drift
from provgit.apply import holds
from provgit.apply import outcomes as oc
from provgit.apply import status as st
from provgit.apply.admission import Admission
from provgit.apply.finish import close_element
from provgit.apply.ledger import Ledger, OutcomeRow, Ref
from provgit.apply.moves import split_moves
from provgit.apply.options import ApplyOptions
from provgit.apply.progress import Progress
from provgit.apply.resources import ResourceTally
from provgit.apply.transport import (
    UNCHECKED,
    FeedSince,
    Transport,
    feed_at,
    identical,
    not_held,
    write_op,
)
from provgit.apply.waves import waves
from provgit.apply.work import ElementWork, chosen
from provgit.drivers.base import (
    ElementError,
    FencedError,
    TransportError,
    WriteOp,
    WriteResult,
)
from provgit.journal import Intent, LeaseLost, fields_hash
from provgit.model.settings import Settings
from provgit.plan.model import Operation
from provgit.secrets import SecretUnavailable, scrub

# Batches prepared beyond those in flight: enough that the next request goes
# out the moment a slot frees, few enough not to hold the loop.
PREPARED_AHEAD = 2
Batch = list[tuple[Operation, WriteOp]]


@dataclass(frozen=True)
class Decisions:
    """What the run decided before its first write, for every element."""

    admission: Admission
    holds: holds.Holds
    # Drifted records held for a person (drift mode report): (element, collection, key).
    drift_held: Mapping[tuple[str, str, str], Any]
    drift_found: drift.Review


class Delivery:
    """Brings each element what the run has for it (one instance per run)."""

    def __init__(
        self,
        ledger: Ledger,
        transport: Transport,
        settings: Settings,
        options: ApplyOptions,
        progress: Progress,
        tally: ResourceTally,
        unavailable: Mapping[str, str],
        decisions: Decisions,
    ) -> None:
        self.ledger = ledger
        self.journal = ledger.journal
        self.transport = transport
        self.settings = settings
        self.options = options
        self.progress = progress
        self.tally = tally
        self.unavailable = unavailable
        self.decisions = decisions
        self.batch_size = options.batch_size or settings.apply.batch_size
        self.in_flight = options.batches_in_flight or settings.apply.batches_in_flight

    async def element(self, w: ElementWork) -> None:
        name = w.plan.element
        ledger, journal = self.ledger, self.journal
        total = len(w.ops)
        self.progress.element_started(name, total)
        if not w.plan.observed or w.driver is None:
            await self._unreachable(w)
            self.progress.element_finished(name, w.result.shown)
            return
        # What it said before this run (set_status below moves `before` on).
        before = dict(ledger.before.get(name) or {})
        await ledger.call(ledger.set_status, name, st.synching(name), "running", None)
        # The plan in hand was computed from an observation newer than any
        # crashed write (or the staleness check proved nothing moved since), so
        # intents left open by a dead run are settled: their effect, if any, is
        # already part of what this plan was computed from.
        await ledger.call(journal.resolve_open_intents, name, "resolved by re-observation")
        for e in await ledger.call(journal.distribution_errors, element=name):
            w.troubled.add((e.collection, e.key))
            if (name, e.collection, e.key) not in self.options.release:
                w.held[(e.collection, e.key)] = (e.id, e.fields_hash)
        w.troubled.update((p.collection, p.key) for p in await ledger.call(journal.pending, name))
        await self._hold(w, before)
        split_moves(w)
        for wave in waves(w.ops):
            await self.wave(w, wave)
            self.progress.advanced(name, w.done, total)
        await self.verify(w)

    async def close(self, w: ElementWork) -> None:
        """The element's end (after `element`, and for a move's old element
        after its deletes: apply/moves.py)."""
        if not w.plan.observed or w.driver is None:
            return  # `element` closed it as unreachable
        await close_element(self.ledger, w, self.tally, self.options, self.decisions.drift_found)
        self.progress.element_finished(w.plan.element, w.result.shown)

    async def _unreachable(self, w: ElementWork) -> None:
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
        queued = chosen(self.options.only, w.plan, w.plan.queued)
        for op in queued:
            w.settle(op, "pending", message=why, error_type=state)
        rows = self.tally.element_rows(w.result)
        # The queued writes (none too) are all this element is owed now, when
        # planned against what it last held: an older pending update not among
        # them was for a change the config no longer wants. With no reading to
        # plan from, what was owed is kept.
        replace = self.options.fresh and self.options.only is None and w.plan.queue_planned
        ledger, journal = self.ledger, self.journal

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
                    ledger.record_pending(name, op, why)
                if rows:
                    journal.set_resource_statuses(rows, ledger.run_id, history=False)
                ledger.set_status(name, status, state, why)

        await ledger.call(commit)

    async def _hold(self, w: ElementWork, before: Mapping[str, Any]) -> None:
        """Writes a suspension, a sync window or the call load holds: pending
        updates naming it (their dependents are then skipped, and planned
        again next run). See apply/holds.py."""
        name, ledger, journal = w.plan.element, self.ledger, self.journal
        h = self.decisions.holds
        if not w.ops:
            return  # nothing to hold, nothing released
        since: dict[Ref, float] = {}
        if any(holds.quiet_rule(self.settings, name, op.kind) for op in w.ops):
            pending = await ledger.call(journal.pending, name)
            since = {(p.collection, p.key): p.first_failed for p in pending}
        d = await holds.element_holds(h, name, w.plan.element_type, w.ops, w.driver, since)
        events = holds.hold_events(name, d, before, self.options.override_window)
        if not (events or d.held):
            return
        w.result.released = holds.released_why(d, str(before.get("status") or ""))

        def commit() -> None:
            with journal.transaction():
                for op, hold in d.held:
                    ledger.record_pending(name, op, hold.reason, first=h.now)
                for kind, message in events:
                    journal.add_event(kind, message, element=name, run_id=ledger.run_id)

        await ledger.call(commit)
        for op, hold in d.held:
            w.settle(op, "pending", message=hold.reason, error_type=hold.source)
        w.hold = holds.strongest([hold for _, hold in d.held])
        taken = {(op.collection, op.key) for op, _ in d.held}
        w.ops = [op for op in w.ops if (op.collection, op.key) not in taken]

    # ---- one wave ---------------------------------------------------------------

    async def wave(self, w: ElementWork, wave: list[Operation]) -> None:
        """Send one wave as batches, several in flight, preparing them as they go.

        Batches are prepared (skips, holds, secrets, intents) only a few ahead
        of the ones in flight: preparing a wave of 10,000 writes up front held
        the event loop, and so every element, for 200-300 ms at each wave
        boundary (measured in benchmarks/bench_apply.py).
        """
        flight = asyncio.Semaphore(self.in_flight)
        ahead = asyncio.Semaphore(self.in_flight + PREPARED_AHEAD)
        tasks: list[asyncio.Task[None]] = []
        sendable: Batch = []
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

        admission = self.decisions.admission
        # Per write below: locals, and no verdict lookup when nothing is refused
        # (apply CPU per write, benchmarks/README.md "Issue 14 re-measurement").
        verdict_of = admission.verdict if admission.verdicts else None
        element, prepared, batch_size = w.plan.element, self._prepared, self.batch_size
        try:
            for op in wave:
                if halted.is_set():
                    break
                verdict = verdict_of(element, op) if verdict_of is not None else None
                if verdict is not None:
                    # Its resource is refused (apply/admission.py): not sent.
                    if verdict.error_type is not None:
                        await self._distribution_error(w, op, verdict.error_type, verdict.message)
                    else:
                        w.settle(op, verdict.status, message=verdict.message)
                    continue
                if w.down is not None:
                    undelivered.append(op)
                    continue
                try:
                    write = prepared(w, op)
                except SecretUnavailable as e:
                    await self._distribution_error(w, op, "secret", str(e))
                    continue
                if write is None:
                    continue
                sendable.append((op, write))
                if len(sendable) >= batch_size:
                    await dispatch()
            if sendable and not halted.is_set():
                await dispatch()
        finally:
            # Every batch already sent is seen through, even if preparing or
            # another batch failed; then the first failure is raised.
            await asyncio.gather(*tasks, return_exceptions=True)
        # The first batch failure (a journal error, a bug), raised.
        failure = next(
            (t.exception() for t in tasks if not t.cancelled() and t.exception() is not None),
            None,
        )
        if failure is not None:
            raise failure
        if undelivered:
            assert w.down is not None
            await self._pending(w, undelivered, w.down)

    def _prepared(self, w: ElementWork, op: Operation) -> WriteOp | None:
        """The write for `op`, or None when it is settled without one (drift
        held, depends on a failure, held by an open error). Plain calls, no
        awaits: it runs once per write. Raises SecretUnavailable."""
        ref = (op.collection, op.key)
        # Drift first: a drifted record waits for a person, whatever it depends on.
        drift_held = self.decisions.drift_held
        drifted = drift_held.get((w.plan.element, *ref)) if drift_held else None
        if drifted is not None:
            w.settle(op, "held", message=drift.hold_message(drifted))
            if op.action != "add":
                # The record is there (as someone left it): what refers to it
                # can still be written.
                w.blocked.pop(ref, None)
            return None
        blocked = w.blocked
        if blocked:
            for d in op.depends_on:  # a plain loop: a generator per write cost more
                if d in blocked:
                    w.settle(op, "skipped", message=f"skipped: depends on {d[0]}/{d[1]}")
                    return None
        held = w.held.get(ref) if w.held else None
        if held is not None and held[1] == fields_hash(op.action, op.fields):
            w.settle(
                op,
                "held",
                message=f"held by distribution error {held[0]} (provgit errors retry {held[0]})",
                error_id=held[0],
            )
            return None
        return write_op(op)

    # ---- one batch ----------------------------------------------------------------

    async def _send(
        self,
        w: ElementWork,
        batch: Batch,
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
            try:
                ids = await self.ledger.record_intents(intents)
            except LeaseLost as e:
                # Another replica took the element: nothing more goes to it from here.
                w.down = FencedError(str(e))
                await self._pending(w, [op for op, _ in batch], w.down)
                return
            assert w.driver is not None
            async with flight or contextlib.nullcontext():
                if halted is not None and halted.is_set():
                    return
                results = await self.transport.transmit(w, [write for _, write in batch])
            await self._settle_batch(w, batch, ids, results)
        finally:
            if prepared is not None:
                prepared.release()

    async def _settle_batch(
        self, w: ElementWork, batch: Batch, ids: list[int], results: dict[int, WriteResult]
    ) -> None:
        """Journal a batch's answers (one transaction), then settle its operations."""
        rows: list[OutcomeRow] = []
        landed: list[Ref] = []
        pending: list[tuple[Operation, oc.Undelivered]] = []
        errors: list[tuple[Operation, oc.Rejected]] = []
        troubled, settle = w.troubled, w.settle
        for i, (op, _write) in enumerate(batch):
            answer = results.get(i)
            if answer is not None and answer.ok:
                # Landed, the common case, without building an outcome
                # (what oc.classify answers for it: Landed(answer.revision)).
                rows.append((ids[i], "ok", answer.revision, None, None))
                if troubled and (op.collection, op.key) in troubled:
                    landed.append((op.collection, op.key))
                settle(op, "ok", revision=answer.revision)
                continue
            answer = answer or WriteResult(ok=False, error=TransportError("no answer"))
            if oc.may_be_identical(op, answer):
                revision = await identical(w, op)
                if revision is not None:
                    answer = WriteResult(ok=True, revision=revision)
            outcome = oc.classify(op, answer)
            if isinstance(outcome, oc.Landed):
                rows.append((ids[i], "ok", outcome.revision, None, None))
                if (op.collection, op.key) in w.troubled:
                    landed.append((op.collection, op.key))
                w.settle(op, "ok", revision=outcome.revision)
                continue
            assert answer.error is not None
            rows.append((ids[i], "error", None, answer.error.code, outcome.message))
            if isinstance(outcome, oc.LostLease):
                w.settle(op, "pending", message=outcome.message, error_type="lost_lease")
            elif isinstance(outcome, oc.Undelivered):
                pending.append((op, outcome))
            else:
                errors.append((op, outcome))
        error_ids = await self.ledger.outcomes(
            w.plan.element, w.plan.element_type, rows, landed, errors, pending
        )
        for (op, r), eid in zip(errors, error_ids, strict=True):
            w.settle(op, "failed", message=r.reason, error_type=r.error_type, error_id=eid)
        for op, u in pending:
            w.settle(op, "pending", message=u.message, error_type=u.code)

    async def verify(self, w: ElementWork, since: int | None = None, start: int = 0) -> None:
        """The element's change feed, not its answers, says what it holds: a
        write answered as done that the feed does not hold as sent (a lying or
        broken element) is a distribution error, never Sync Completed.
        `since`, `start`: the writes settled from `start` on (default: the run's)."""
        since = w.plan.observed_revision if since is None else since
        if since is None or w.driver is None:
            return
        if getattr(w.driver, "revision_is_clock", False):
            return  # a directory: its feed is read by time, not by the writes' revisions
        # Every write answered as done: one answered with no revision, or one
        # from before the element was observed, or the revision of another
        # write (two ops, one revision: one change) cannot be what it holds.
        landed = [
            i
            for i, r in enumerate(w.result.operations)
            if i >= start and r.status == "ok" and (r.revision is not None or r.action != "delete")
        ]
        if not landed:
            return
        after = {
            rev
            for i in landed
            if (rev := w.result.operations[i].revision) is not None and rev > since
        }
        ops = {(op.collection, op.key): op for op in w.ops}
        seen = await feed_at(w.driver, since, after, ops) if after else FeedSince({}, {})
        if seen is None:
            if w.down is None:  # down mid-run: Stopped whatever its writes, as before
                await self._unchecked(w, landed)
            return
        for i in landed:
            r = w.result.operations[i]
            op = ops.get((r.collection, r.key))
            if op is None:
                continue
            why = not_held(op, r.revision, since, seen)
            if why is None:
                continue
            eid = await self.ledger.distribution_error(
                w.plan.element, w.plan.element_type, op, "not_stored", why
            )
            w.result.operations[i] = w.outcomes[(op.collection, op.key)] = dataclasses.replace(
                r, status="failed", message=why, error_type="not_stored", error_id=eid
            )

    async def _unchecked(self, w: ElementWork, landed: list[int]) -> None:
        """Writes the element lets no one check are not kept (else Sync Completed): pending."""
        ops, unchecked = {(op.collection, op.key): op for op in w.ops}, list[Operation]()
        for i in landed:
            r = w.result.operations[i]
            if (op := ops.get((r.collection, r.key))) is None:
                continue
            unchecked.append(op)
            w.result.operations[i] = w.outcomes[(op.collection, op.key)] = dataclasses.replace(
                r, status="pending", message=UNCHECKED, error_type="unchecked"
            )
        await self.ledger.pending(w.plan.element, unchecked, [UNCHECKED] * len(unchecked))

    async def _distribution_error(
        self, w: ElementWork, op: Operation, error_type: str, reason: str
    ) -> None:
        reason = scrub(reason, op.fields)
        eid = await self.ledger.distribution_error(
            w.plan.element, w.plan.element_type, op, error_type, reason
        )
        w.settle(op, "failed", message=reason, error_type=error_type, error_id=eid)

    async def _pending(self, w: ElementWork, ops: list[Operation], e: ElementError) -> None:
        if isinstance(e, FencedError):
            # The lease is lost: the new holder plans these records from what it
            # observes; these were never sent and this replica journals nothing of them.
            for op in ops:
                w.settle(op, "pending", message=e.message, error_type="lost_lease")
            return
        messages = [scrub(e.message, op.fields) for op in ops]
        await self.ledger.pending(w.plan.element, ops, messages)
        for op, message in zip(ops, messages, strict=True):
            w.settle(op, "pending", message=message, error_type=e.code)
