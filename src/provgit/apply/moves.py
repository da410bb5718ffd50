"""Make before break: a record moving between elements is deleted from the
old one only once the new one has it (plan/moves.py marks those deletes).

An element's marked deletes, and the deletes its plan orders after them (a
COS or template the moving users still name there), are taken out of its
waves. Every element's waves and kept-write check run first; then each
marked delete goes out if its create landed and was kept on every element
the plan creates it on, in this run. Otherwise it stays a pending update
whose reason says what it waits for ("Move pending: ..."), the element shows
that reason instead of Sync Completed, and the next run, planned against what
the elements hold then, completes the move (or, the create never having
landed, holds the delete again). A delete that a kill stops before it is sent
is planned again by the next run the same way, so nothing is lost or doubled.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING

from provgit.apply import holds
from provgit.apply.waves import waves
from provgit.apply.work import ElementWork
from provgit.plan.model import Operation
from provgit.plan.moves import MOVE_PENDING, held_reason, move_map
from provgit.registry import DELETE_FIRST

if TYPE_CHECKING:
    from provgit.apply.delivery import Delivery
    from provgit.apply.ledger import Ledger

Ref = tuple[str, str]
# Whether `element` has the record `ref` from this run (created and kept).
Confirmed = Callable[[str, Ref], bool]
MOVE = "move"


def split_moves(w: ElementWork) -> None:
    """Move `w`'s marked deletes, the other writes of their resources (the
    directory entry that takes a moved user's DN) and the deletes ordered
    after them from its waves to `w.later`, in plan order."""
    moving = move_map(w.plan)
    if not moving:
        return
    resources = {(op.kind, op.resource) for op in w.ops if (op.collection, op.key) in moving}
    if not resources:
        return  # held before (a window) or not in this run: nothing waits
    w.later = [
        op
        for op in w.ops
        if (op.kind, op.resource) in resources
        or (op.action == "delete" and op.collection not in DELETE_FIRST)
    ]
    taken = {(op.collection, op.key) for op in w.later}
    w.ops = [op for op in w.ops if (op.collection, op.key) not in taken]


def created(works: dict[str, ElementWork], elsewhere: frozenset[tuple[str, Ref]]) -> Confirmed:
    """Whether an element has a record: of this run, its add landed and the
    kept-write check found it; not in the run, the journal says so
    (`elsewhere`, from `kept_elsewhere`)."""

    def confirmed(element: str, ref: Ref) -> bool:
        if (element, ref) in elsewhere:
            return True
        w = works.get(element)
        r = None if w is None else w.outcomes.get(ref)
        return r is not None and r.action == "add" and r.status == "ok"

    return confirmed


async def kept_elsewhere(
    ledger: Ledger, works: Iterable[ElementWork], planned: Collection[str]
) -> frozenset[tuple[str, Ref]]:
    """(element, record) of the moves of `works` to elements this run does
    not cover (`planned`: those it does; another replica holds the others)
    that the shared journal says hold the record: provgit's newest write of
    it there is an add that landed ("ok"), and no pending update or
    distribution error (a write the kept-write check found dropped) is open
    for it. A create of this run decides for an element of the run, never
    the journal: an element that failed confirms none."""
    asked: dict[str, set[Ref]] = {}
    for w in works:
        for ref, to in move_map(w.plan).items():
            for element in to:
                if element not in planned:
                    asked.setdefault(element, set()).add(ref)
    if not asked:
        return frozenset()
    journal = ledger.journal

    def read() -> frozenset[tuple[str, Ref]]:
        out: set[tuple[str, Ref]] = set()
        for element, refs in asked.items():
            last = journal.last_record_writes(element, refs)
            open_ = {(p.collection, p.key) for p in journal.pending(element)}
            open_ |= {(d.collection, d.key) for d in journal.distribution_errors(element=element)}
            for ref in refs:
                write = last.get(ref)
                landed = write is not None and (write.action, write.outcome) == ("add", "ok")
                if landed and ref not in open_:
                    out.add((element, ref))
        return frozenset(out)

    return await ledger.call(read)


def _held(w: ElementWork, confirmed: Confirmed) -> list[tuple[Operation, str]]:
    """The writes of `w.later` that wait, each with its reason."""
    moving = move_map(w.plan)
    out: list[tuple[Operation, str]] = []
    # Resource -> the held delete its other writes wait for.
    waits: dict[tuple[str, str], str] = {}
    first: str | None = None
    for op in w.later:
        ref = (op.collection, op.key)
        missing = [e for e in moving.get(ref, ()) if not confirmed(e, ref)]
        if missing:
            out.append((op, held_reason(op.collection, op.key, missing)))
            waits[(op.kind, op.resource)] = first = first or f"{op.collection}/{op.key}"
            continue
        after = waits.get((op.kind, op.resource))
        if after is None and op.action == "delete" and ref not in moving:
            # Ordered after a held move's delete: it may still be named by it.
            after = first
        if after is not None:
            what = f"{op.action} of {op.collection}/{op.key}"
            out.append((op, f"{MOVE_PENDING}{what} waits for the delete of {after}"))
    return out


async def _announce(delivery: Delivery, name: str, held: list[tuple[Operation, str]]) -> None:
    """A journal event for the moves `name` holds back that were not held
    before (a retry holding the same ones again says nothing new): the
    events feed and `provgit events` tell what waits, and for which element."""
    if not held:
        return
    ledger = delivery.ledger
    journal = ledger.journal

    def commit() -> None:
        before = {
            (p.collection, p.key)
            for p in journal.pending(name)
            if p.last_error.startswith(MOVE_PENDING)
        }
        new = [why for op, why in held if (op.collection, op.key) not in before]
        if not new:
            return
        more = f" (and {len(new) - 1} more)" if len(new) > 1 else ""
        message = f"{name}: {new[0][len(MOVE_PENDING) :]}{more}: make before break"
        journal.add_event("move_held", message, element=name, run_id=ledger.run_id)

    await ledger.call(commit)


async def finish_moves(delivery: Delivery, w: ElementWork, confirmed: Confirmed) -> None:
    """Send `w`'s deletes that the moves allow now; keep the others pending."""
    if not w.later:
        return
    held = _held(w, confirmed) if w.down is None else []
    if held:
        name = w.plan.element
        moving = move_map(w.plan)
        await _announce(delivery, name, [h for h in held if (h[0].collection, h[0].key) in moving])
        await delivery.ledger.pending(name, [op for op, _ in held], [why for _, why in held])
        for op, why in held:
            w.settle(op, "pending", message=why, error_type=MOVE)
        if w.hold is None:
            moves = [why for op, why in held if (op.collection, op.key) in move_map(w.plan)]
            reason = (
                moves[0]
                if len(moves) == 1
                else f"{MOVE_PENDING}{len(moves)} deletes held until their new elements have them"
            )
            w.hold = holds.Hold(MOVE, reason)
    taken = {(op.collection, op.key) for op, _ in held}
    going = [op for op in w.later if (op.collection, op.key) not in taken]
    since = max(
        (r.revision for r in w.result.operations if r.status == "ok" and r.revision is not None),
        default=w.plan.observed_revision,
    )
    w.ops = [*w.ops, *going]
    start = len(w.result.operations)  # the writes before were verified already
    for wave in waves(going):
        await delivery.wave(w, wave)
    await delivery.verify(w, since, start)
