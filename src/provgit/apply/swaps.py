"""A number swap's spare-number step landed: the swap is not done yet.

The plan writes one user of a swap with a spare DN (plan/swaps.py); once that
write lands, the element holds what the config does not want (the spare
number, or the user the next run deletes there). It is kept as a pending
update whose reason says so ("Move pending: users/jdoe is on spare DN ..."),
the element shows that reason instead of Sync Completed, and the next run,
planned against what the elements hold then, ends the swap and clears it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from provgit.apply import holds
from provgit.apply.moves import MOVE
from provgit.apply.work import ElementWork
from provgit.plan.moves import MOVE_PENDING

if TYPE_CHECKING:
    from provgit.apply.delivery import Delivery


async def finish_swaps(delivery: Delivery, w: ElementWork) -> None:
    """Keep each spare-number step of `w` that landed as a pending update."""
    if not w.plan.swaps or w.down is not None:
        return
    steps = {(op.collection, op.key): op for op in w.plan.operations if op.action == "modify"}
    landed = []
    for swap in w.plan.swaps:
        ref = (swap.collection, swap.key)
        r = w.outcomes.get(ref)
        if ref in steps and r is not None and r.status == "ok":
            landed.append((steps[ref], swap.reason()))
    if not landed:
        return
    name = w.plan.element
    await delivery.ledger.pending(name, [op for op, _ in landed], [why for _, why in landed])
    for op, why in landed:
        w.settle(op, "pending", message=why, error_type=MOVE)
        # Landed: what depends on it may go (it is the step they wait for).
        w.blocked.pop((op.collection, op.key), None)
    if w.hold is None:
        reason = (
            landed[0][1]
            if len(landed) == 1
            else f"{MOVE_PENDING}{len(landed)} users on spare numbers for a number swap"
        )
        w.hold = holds.Hold(MOVE, reason)
