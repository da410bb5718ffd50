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

from collections.abc import Callable
from typing import TYPE_CHECKING

from provgit.apply import holds
from provgit.apply.waves import waves
from provgit.apply.work import ElementWork
from provgit.plan.model import Operation
from provgit.plan.moves import MOVE_PENDING, held_reason, move_map
from provgit.registry import DELETE_FIRST

if TYPE_CHECKING:
    from provgit.apply.delivery import Delivery

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


def created(works: dict[str, ElementWork]) -> Confirmed:
    """Whether an element of this run has a record: its add landed and the
    kept-write check found it (an element not in the run: no)."""

    def confirmed(element: str, ref: Ref) -> bool:
        w = works.get(element)
        r = None if w is None else w.outcomes.get(ref)
        return r is not None and r.action == "add" and r.status == "ok"

    return confirmed


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


async def finish_moves(delivery: Delivery, w: ElementWork, confirmed: Confirmed) -> None:
    """Send `w`'s deletes that the moves allow now; keep the others pending."""
    if not w.later:
        return
    held = _held(w, confirmed) if w.down is None else []
    if held:
        name = w.plan.element
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
