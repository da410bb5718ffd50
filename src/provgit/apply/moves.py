"""Make before break: a record moving between elements is deleted from the
old one only once the new one has it (plan/moves.py marks those deletes).

An element's marked deletes, and the deletes its plan orders after them (a
COS or template the moving users still name there), are taken out of its
waves. Every element's waves and kept-write check run first; then each
marked delete goes out if its create landed (in this run, or, on an element
the run does not cover, as the journal says) on every element the plan
creates it on, and reading each of those elements now (its change feed from
that create on) finds it still there: an answer or a journal row is not the
record, and a new host reinstalled or dropping what it acknowledged must not
leave the user nowhere. Otherwise it stays a pending update
whose reason says what it waits for ("Move pending: ..."), the element shows
that reason instead of Sync Completed, and the next run, planned against what
the elements hold then, completes the move (or, the create never having
landed, holds the delete again). A delete that a kill stops before it is sent
is planned again by the next run the same way, so nothing is lost or doubled.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from provgit.apply import holds
from provgit.apply.transport import FeedSince, feed_at
from provgit.apply.waves import waves
from provgit.apply.work import ElementWork
from provgit.plan.identity import deleted_fields, identities
from provgit.plan.model import Operation
from provgit.plan.moves import MOVE_PENDING, held_reason, move_map, move_wants
from provgit.plan.swap_mark import Unread
from provgit.registry import DELETE_FIRST

if TYPE_CHECKING:
    from provgit.apply.delivery import Delivery
    from provgit.apply.ledger import Ledger
    from provgit.drivers.base import Driver

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
    # A move that renames: the writes of the new name here (the directory
    # entry taking the DN the old user still holds) wait as well.
    kinds = {ref: op.kind for op in w.ops if (ref := (op.collection, op.key)) in moving}
    resources |= {
        (kinds[ref], m.as_key)
        for m in w.plan.moves
        if m.as_key is not None and (ref := (m.collection, m.key)) in kinds
    }
    resources |= {r for taken in _taking(w.ops, moving).values() for r in taken}
    w.later = [
        op
        for op in w.ops
        if (op.kind, op.resource) in resources
        or (op.action == "delete" and op.collection not in DELETE_FIRST)
    ]
    taken = {(op.collection, op.key) for op in w.later}
    w.ops = [op for op in w.ops if (op.collection, op.key) not in taken]


def _taking(ops: Iterable[Operation], moving: Collection[Ref]) -> dict[Ref, set[tuple[str, str]]]:
    """Each moving record `ops` delete -> the resources whose adds or modifies
    here take a number or an email it still holds (a new hire given the DN of
    a user moving away, a user renumbered to it, in the same commit). The
    element refuses them while the record is there, so they wait for its
    delete instead of failing (a refused write is held by its error until a
    person retries it)."""
    held = {
        (op.collection, op.key): ids
        for op in ops
        if op.action == "delete"
        and (op.collection, op.key) in moving
        and (ids := identities(deleted_fields(op)))
    }
    out: dict[Ref, set[tuple[str, str]]] = {}
    if not held:
        return out
    for op in ops:
        if op.action == "delete" or not op.fields:
            continue
        if op.action == "modify":
            # Only what it takes (not what it held before): none unless it
            # changes a number or the email.
            if "services" not in op.changes and "email" not in op.changes:
                continue
            mine = identities(op.fields) - identities({**op.fields, **deleted_fields(op)})
        else:
            mine = identities(op.fields)
        for ref, ids in held.items():
            if mine & ids and ref != (op.collection, op.key):
                out.setdefault(ref, set()).add((op.kind, op.resource))
    return out


# (element, record) -> the revision its create landed at there.
Landed = dict[tuple[str, Ref], int]


def _landed(works: Mapping[str, ElementWork], elsewhere: Landed) -> Landed:
    """Each create a held move waits for that landed: of this run, its add
    answered ok and the kept-write check found it; not in the run, the
    journal says so (`elsewhere`, from `kept_elsewhere`)."""
    out: Landed = {}
    for w in works.values():
        for wants in move_wants(w.plan).values():
            for element, ref in wants:
                if (element, ref) in elsewhere:
                    out[(element, ref)] = elsewhere[(element, ref)]
                    continue
                n = works.get(element)
                r = None if n is None else n.outcomes.get(ref)
                if r is not None and r.action == "add" and r.status == "ok" and r.revision:
                    out[(element, ref)] = r.revision
    return out


def _holds(ref: Ref, revision: int, seen: FeedSince) -> bool:
    """Whether the feed since just before `revision` (or the records read in
    full) shows the element holding `ref` now: created there at `revision`
    and not deleted since (a reinstalled element's feed no longer has it)."""
    if seen.now is not None:
        return ref in seen.now
    at = seen.at.get(revision)
    if at is None or at[:2] != ref or at[2] is None:
        return False
    last = seen.last.get(ref)
    return last is None or last[1][2] is not None


async def created(
    works: Mapping[str, ElementWork], elsewhere: Landed, drivers: Mapping[str, Driver]
) -> Confirmed:
    """Whether an element has a record a move waits for, read on it now:
    the create landed (`_landed`) and the element's change feed from that
    create on still holds it. An ok answer or a journal row is not enough:
    the element may have been reinstalled or dropped the record since, and
    the old copy is the user's only one. An element that cannot be read
    (no driver here, down, a broken feed) confirms nothing: the delete waits."""
    landed = _landed(works, elsewhere)
    asked: dict[str, dict[Ref, int]] = {}
    for (element, ref), revision in landed.items():
        asked.setdefault(element, {})[ref] = revision
    held: set[tuple[str, Ref]] = set()
    for element, refs in asked.items():
        w = works.get(element)
        driver = w.driver if w is not None and w.down is None else drivers.get(element)
        if driver is None:
            continue
        since = min(refs.values()) - 1
        seen = await feed_at(driver, since, set(refs.values()), dict.fromkeys(refs))
        if seen is not None:
            held |= {(element, r) for r, rev in refs.items() if _holds(r, rev, seen)}

    def confirmed(element: str, ref: Ref) -> bool:
        return (element, ref) in held

    return confirmed


async def kept_elsewhere(
    ledger: Ledger, works: Iterable[ElementWork], planned: Collection[str]
) -> Landed:
    """(element, record) of the moves of `works` to elements this run does
    not cover (`planned`: those it does; another replica holds the others)
    that the shared journal says hold the record: provgit's newest write of
    it there is an add or modify that landed ("ok"), and no pending update or
    distribution error (a write the kept-write check found dropped) is open
    for it; with the revision it landed at, from which `created` reads the
    element. A create of this run decides for an element of the run, never
    the journal: an element that failed confirms none."""
    asked: dict[str, set[Ref]] = {}
    for w in works:
        for wants in move_wants(w.plan).values():
            for element, ref in wants:
                if element not in planned:
                    asked.setdefault(element, set()).add(ref)
    if not asked:
        return {}
    journal = ledger.journal

    def read() -> Landed:
        out: Landed = {}
        for element, refs in asked.items():
            last = journal.last_record_writes(element, refs)
            open_ = {(p.collection, p.key) for p in journal.pending(element)}
            open_ |= {(d.collection, d.key) for d in journal.distribution_errors(element=element)}
            for ref in refs:
                write = last.get(ref)
                # An add, or a modify after it (the moved record edited on its
                # new host before the old host's turn): either way the newest
                # write there landed with the record in it.
                if write is None or write.outcome != "ok" or write.action == "delete":
                    continue
                if write.revision and ref not in open_:
                    out[(element, ref)] = write.revision
        return out

    return await ledger.call(read)


def _held(
    w: ElementWork,
    confirmed: Confirmed,
    planned: Collection[str],
    unread: Mapping[tuple[str, str, str], Unread],
) -> list[tuple[Operation, str]]:
    """The writes of `w.later` that wait, each with its reason (`planned`:
    the elements of the run; a new home outside it is said to be; `unread`:
    writes of a number swap that waits for elements that did not answer,
    which is then their reason)."""
    moving = move_wants(w.plan)
    name = w.plan.element
    renamed = {(m.collection, m.key): m.as_key for m in w.plan.moves if m.as_key is not None}
    taking = _taking(w.later, moving) if moving else {}
    out: list[tuple[Operation, str]] = []
    # Resource -> the held delete its other writes wait for.
    waits: dict[tuple[str, str], str] = {}
    first: str | None = None
    for op in w.later:
        ref = (op.collection, op.key)
        missing = [e for e, made in moving.get(ref, ()) if not confirmed(e, made)]
        if missing:
            as_key = renamed.get(ref)
            missing = list(dict.fromkeys(missing))
            outside = [e for e in missing if e not in planned]
            why = held_reason(op.collection, op.key, missing, as_key, outside)
            swap = unread.get((name, *ref))
            out.append((op, why if swap is None else swap.reason(op.action, *ref)))
            waits[(op.kind, op.resource)] = first = first or f"{op.collection}/{op.key}"
            if as_key is not None:
                waits[(op.kind, as_key)] = first
            for resource in taking.get(ref, ()):
                waits[resource] = f"{op.collection}/{op.key}"
            continue
        after = waits.get((op.kind, op.resource))
        if after is None and op.action == "delete" and ref not in moving:
            # Ordered after a held move's delete: it may still be named by it.
            after = first
        if after is not None:
            swap = unread.get((name, *ref))
            what = f"{op.action} of {op.collection}/{op.key}"
            why = f"{MOVE_PENDING}{what} waits for the delete of {after}"
            out.append((op, why if swap is None else swap.reason(op.action, *ref)))
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


async def finish_moves(
    delivery: Delivery, w: ElementWork, confirmed: Confirmed, planned: Collection[str]
) -> None:
    """Send `w`'s deletes that the moves allow now; keep the others pending
    (`planned`: the elements of the run)."""
    if not w.later:
        return
    unread = delivery.options.swap_waits
    held = _held(w, confirmed, planned, unread) if w.down is None else []
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
