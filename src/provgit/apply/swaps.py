"""A number swap's spare-number step landed: the swap is not done yet.

The plan writes one user of a swap with a spare DN (plan/swaps.py); once that
write lands, the element holds what the config does not want (the spare
number, or the user the next run deletes there). It is kept as a pending
update whose reason says so ("Move pending: users/jdoe is on spare DN ..."),
the element shows that reason instead of Sync Completed, and the next run,
planned against what the elements hold then, ends the swap and clears it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from provgit.apply import holds
from provgit.apply.moves import MOVE
from provgit.apply.result import OpResult
from provgit.apply.work import ElementWork
from provgit.plan.model import Operation
from provgit.plan.moves import MOVE_PENDING
from provgit.plan.swap_mark import Swap

if TYPE_CHECKING:
    from provgit.apply.delivery import Delivery


async def finish_swaps(delivery: Delivery, w: ElementWork) -> None:
    """Keep each spare-number step of `w` that landed as a pending update.

    The step is one write that landed, counted as applied once (its result
    says it put the user on a spare); what the user still owes here, its own
    number or its delete once the new host has it, is the pending update,
    counted once as pending (not a second outcome of the step's write)."""
    if not w.plan.swaps or w.down is not None:
        return
    steps = {(op.collection, op.key): op for op in w.plan.operations if op.action == "modify"}
    landed: list[tuple[Operation, Swap]] = []
    for swap in w.plan.swaps:
        ref = (swap.collection, swap.key)
        r = w.outcomes.get(ref)
        if ref in steps and r is not None and r.status == "ok":
            landed.append((steps[ref], swap))
    if not landed:
        return
    name = w.plan.element
    reasons = [swap.reason() for _, swap in landed]
    await delivery.ledger.pending(name, [op for op, _ in landed], reasons)
    for op, swap in landed:
        _owed(w, op, swap)
        # Landed: what depends on it may go (it is the step they wait for).
        w.blocked.pop((op.collection, op.key), None)
    if w.hold is None:
        reason = (
            reasons[0]
            if len(landed) == 1
            else f"{MOVE_PENDING}{len(landed)} users on spare numbers for a number swap"
        )
        w.hold = holds.Hold(MOVE, reason)


def _owed(w: ElementWork, op: Operation, swap: Swap) -> None:
    """The step's result says what it wrote; the write still owed is pending."""
    ref = (op.collection, op.key)
    step = w.outcomes[ref]
    results = w.result.operations
    for i in range(len(results) - 1, -1, -1):
        if results[i] is step:
            results[i] = dataclasses.replace(step, message=swap.step_note())
            break
    owed = OpResult(
        op.action, op.collection, op.key, op.kind, op.resource, "pending", swap.reason(), MOVE
    )
    results.append(owed)
    w.outcomes[ref] = owed
