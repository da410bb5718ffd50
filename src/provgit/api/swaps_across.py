"""A number swap whose cycle runs through elements other replicas hold (issue #19).

A replica plans only the elements it holds (watch/replicas.py). A swap whose
users also trade hosts (user0 cs1 -> cs2 taking user1's number, user1 cs2 ->
cs1 taking user0's) is a cycle through both hosts (plan/swaps.py): cut to
cs1, the plan sees user1's create wait for user0's delete, and that delete
wait for cs2 (a move, make before break), but not that cs2's create of user0
waits for user1's delete there, which waits for cs1. Neither replica saw the
cycle whole, so none broke it: each held its delete "until the other host has
it", for ever.

So when a replica's plan has a write taking a number that a user leaving for
another replica's element frees (`waits_elsewhere`, the only way such a cycle
leaves the held elements), the replica reads the other elements (read only,
never written: their holders write them) and plans the whole network, as one
process would. The cycle is broken there by the single-process rule: the
first user by key is put on a spare number, the spare clashing with no
number the config or any element holds. Every replica comes to the same step
from the same readings; the holder of the step's element applies it (the
held elements whose swap steps differ take the whole network's plan), the
others apply their part as planned, and the runs after, planned against what
the elements hold then, end the swap as they do for one process. If another
element cannot be read, the plan stays as cut: the swap waits for it, and
the watcher's log says which elements it may run through unread
(`swap_waits_unread`), and so does the status: each write of such a swap
on a held element is held with its reason (`swap_mark.Unread`: "number
swap with users/x waits for cs3, which did not answer"), a pending update
until the swap goes out.

A swap a cut plan breaks on its own (two users of one element) is planned
whole too: its spare must ring no one on the elements other replicas hold,
and two replicas breaking swaps at once, each among the numbers it knows,
parked two users on one spare (9989 on cs2 and on mcl). From one whole plan
each user of every cycle gets a spare of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

from provgit.api.incremental import Desired
from provgit.api.network import connect, observe_network
from provgit.observe import Observation
from provgit.plan import Plan, PlanOptions
from provgit.plan.compute import compute_plan
from provgit.plan.swap_mark import Unread
from provgit.plan.swaps import waiting_elsewhere, waits_elsewhere

UNREAD = (
    "a number swap may run through these elements (other replicas' ones), "
    "which did not answer: its writes wait for them"
)
# (element, collection, key) -> why that write of a swap waits (apply/moves.py).
SwapWaits = dict[tuple[str, str, str], Unread]


async def break_across(
    plan: Plan,
    desired: Desired,
    observed: Mapping[str, Observation],
    state_dir: Path,
    config_root: Path,
    options: PlanOptions,
    warn: Callable[..., None] = lambda *_, **__: None,
) -> tuple[Plan, SwapWaits]:
    """`plan` (cut to the elements a replica holds, read as `observed`) with
    the number swaps that run through other elements broken as a plan of the
    whole network breaks them; `plan` itself when none may (`warn`, the
    watcher's log, is told which elements did not answer, when that is why,
    and so are the swap's writes that wait for them: the second value)."""
    held = [e.element for e in plan.elements]
    if not waits_elsewhere(plan.elements, held) and not any(e.swaps for e in plan.elements):
        return plan, {}
    state = desired.state
    others = [n for n in state.elements if n not in held]
    if not others:
        return plan, {}  # it holds them all: planned whole already
    network = connect(state, state_dir, config_root, others)
    try:
        # Read in full, saved nowhere: the holders keep their own readings.
        seen = await observe_network(network, state_dir, previous={}, save=False)
    finally:
        await network.close()
    down = sorted(n for n in others if n not in seen or not seen[n].ok)
    if down:
        # What one holds is unknown: no spare picked half blind.
        warn("swap_waits_unread", elements=down, reason=UNREAD)
        return plan, unread_waits(plan, held, down)
    everything = {**seen, **observed}
    whole = await asyncio.to_thread(
        compute_plan,
        desired.target,
        everything,
        state.settings,
        {n: e.type for n, e in state.elements.items()},
        dataclasses.replace(options, elements=tuple(n for n in state.elements if n in everything)),
        plan.commit,
        plan.source,
    )
    by_name = {e.element: e for e in whole.elements}
    taken = {
        e.element: w
        for e in plan.elements
        if (w := by_name.get(e.element)) is not None and w.swaps != e.swaps
    }
    if not taken:
        return plan, {}
    elements = tuple(taken.get(e.element, e) for e in plan.elements)
    return dataclasses.replace(plan, elements=elements), {}


def unread_waits(plan: Plan, held: list[str], down: list[str]) -> SwapWaits:
    """The writes of the swaps through other elements that wait for `down`:
    on each held element, the delete of the user leaving and the write taking
    its number, each naming the other user."""
    out: SwapWaits = {}
    for gone, element, taker in waiting_elsewhere(plan.elements, held):
        unread = tuple(down)
        out[(element, gone.collection, gone.key)] = Unread(
            f"{taker.collection}/{taker.key}", unread
        )
        out[(element, taker.collection, taker.key)] = Unread(
            f"{gone.collection}/{gone.key}", unread
        )
    return out
