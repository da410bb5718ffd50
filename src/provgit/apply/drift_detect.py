"""Drift between runs: records someone changed outside provgit since it wrote them.

Every run compares what its plan found on the elements with what provgit last
wrote there. The journal holds, per record, the revision each of provgit's
writes produced; the element stamps every record with the revision of its last
change. A record the plan would write (so it is not what the config wants)
whose revision is not the one provgit's last write produced was changed by
someone else: drift. So is a record provgit wrote that is now missing, and one
provgit deleted that is back. A record provgit never wrote (or whose write's
fate is unknown after a crash) has no baseline and is not called drift.

What is found becomes an open drift item in the journal (fields named, never
values), an event (and so an Atom entry), and is either held (`report`: the
run does not overwrite it until a person decides) or overwritten (`correct`,
or `--overwrite-drift`), which closes the item as corrected. An item also
closes once the element holds what the config wants again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from provgit.journal import DriftItem, Journal, JournalError, journal_exists
from provgit.model.settings import Settings
from provgit.observe import ObservationCache
from provgit.plan.model import Operation, Plan
from provgit.wire.codec import element_text

DriftMode = Literal["report", "correct"]
Ref = tuple[str, str, str]  # (element, collection, key)
HINT = "run apply --overwrite-drift or import it"
# journal meta: the element revision at which the element is known to hold
# no drift that was not found (see `set_baseline`).
BASELINE = "drift_baseline/"
SHOWN = 5


def mode_for(
    settings: Settings, override: DriftMode | None = None, default: DriftMode = "correct"
) -> DriftMode:
    """The drift mode of a run: the command's option, else `drift.mode` of
    provgit.yaml, else the command's default."""
    return override or settings.drift.mode or default


def _change(op: Operation, last_action: str) -> str:
    if op.action == "add":
        return "missing"
    return "unexpected" if last_action == "delete" else "changed"


def _is_drift(op: Operation, action: str, outcome: str | None, revision: int | None) -> bool:
    """Whether the record the plan found is not what provgit's last write left."""
    if outcome != "ok":
        return False  # fate unknown (a crash): the write may have landed
    if op.action == "add":
        # Absent now: drift if provgit's last write put it there.
        return action != "delete"
    if action == "delete":
        return True  # provgit deleted it and it is back
    return revision is not None and op.if_revision != revision


def detect(
    plan: Plan,
    journal: Journal,
    known: Mapping[Ref, DriftItem] | None = None,
    missed: Mapping[str, frozenset[tuple[str, str]]] | None = None,
) -> dict[Ref, DriftItem]:
    """Drift among the records `plan` would write, by element revision; records
    with an open drift item (`known`) stay drift while the plan still writes them.
    `missed`: records a full read found changed with no word from the change
    feed: their revision may say nothing (a backup restored under the same
    one), so they are drift if provgit wrote them at all."""
    known = journal_items(journal) if known is None else known
    now = time.time()
    found: dict[Ref, DriftItem] = {}
    for ep in plan.elements:
        if not ep.observed or not ep.operations:
            continue
        lied = (missed or {}).get(ep.element, frozenset())
        if not lied and journal.meta(BASELINE + ep.element) == str(ep.observed_revision):
            # Nobody changed the element since a run looked at it and wrote
            # to it: only drift already known can be there. Saves a journal
            # look-up per planned record (~1 s per 100,000).
            last = {}
        else:
            last = journal.last_record_writes(
                ep.element, ((op.collection, op.key) for op in ep.operations)
            )
        for op in ep.operations:
            ref = (ep.element, op.collection, op.key)
            write = last.get((op.collection, op.key))
            before = known.get(ref)
            drifted = write is not None and (
                _is_drift(op, write.action, write.outcome, write.revision)
                or ((op.collection, op.key) in lied and write.outcome == "ok")
            )
            if not drifted and before is None:
                continue
            found[ref] = DriftItem(
                ep.element,
                op.collection,
                op.key,
                op.kind,
                op.resource,
                _change(op, write.action if write is not None else "modify")
                if drifted or before is None
                else before.change,
                _fields(op),
                op.if_revision,
                before.state if before is not None else "open",
                before.note if before is not None else None,
                before.first_seen if before is not None else now,
                now,
            )
    return found


def set_baseline(
    journal: Journal, element: str, observed: int | None, written: list[int | None]
) -> None:
    """After a run looked for drift on `element` (observed at revision
    `observed`) and wrote to it: if its writes produced exactly the revisions
    after `observed` (nobody else wrote meanwhile), the element at the last
    one holds no drift that was not found, and the next run whose observation
    is still at that revision need not look record by record."""
    revisions = [r for r in written if r is not None]
    if observed is None or len(revisions) != len(written):
        return
    if sorted(revisions) == list(range(observed + 1, observed + 1 + len(revisions))):
        journal.set_meta(BASELINE + element, str(observed + len(revisions)))


FIELD_NAME_MAX = 80


def _fields(op: Operation) -> tuple[str, ...]:
    """The names of the fields the config would change (names only: no value).
    A name may be one the element added: kept as one bounded line, control
    characters as U+XXXX (it reaches the journal, `plan`, `status` and the feed)."""
    if op.action != "modify":
        return ()
    return tuple(sorted(element_text(k)[:FIELD_NAME_MAX] for k in op.changes if k[:1] != "_"))


def journal_items(journal: Journal) -> dict[Ref, DriftItem]:
    return {(d.element, d.collection, d.key): d for d in journal.drift_items()}


def describe(element: str, items: list[DriftItem], what: str) -> str:
    """One feed line per element, naming the first few records and the fields
    that differ (never their values)."""
    shown = ", ".join(
        f"{d.collection}/{d.key} {d.change}" + (f" ({', '.join(d.fields[:3])})" if d.fields else "")
        for d in items[:SHOWN]
    )
    more = f", and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return (
        f"drift on {element}: {len(items)} record(s) changed outside provgit: {shown}{more}; {what}"
    )


def by_element(items: Iterable[DriftItem]) -> dict[str, list[DriftItem]]:
    out: dict[str, list[DriftItem]] = {}
    for d in items:
        out.setdefault(d.element, []).append(d)
    return out


@dataclass
class Review:
    """The drift a run found: everything open on the records it plans to write."""

    found: dict[Ref, DriftItem] = field(default_factory=dict)
    new: list[DriftItem] = field(default_factory=list)
    cleared: list[DriftItem] = field(default_factory=list)


def review(
    plan: Plan,
    journal: Journal,
    mode: DriftMode,
    *,
    settle: bool,
    run_id: int | None = None,
    extra: Iterable[DriftItem] = (),
    missed: Mapping[str, frozenset[tuple[str, str]]] | None = None,
) -> Review:
    """Find drift in `plan`, record it (one event per element for what is new)
    and, when `settle` (the plan was observed in this run), close the items of
    observed records the plan leaves alone: the element equals the config again.

    `extra`: drift found by other means (the watcher's resync finds changes to
    records provgit never wrote), recorded the same way. `missed`: per
    element, what a full read found the change feed had not said (see
    `detect`), with an event saying the element's feed cannot be trusted.
    """
    known = journal_items(journal)
    found = detect(plan, journal, known, missed)
    for d in extra:
        ref = (d.element, d.collection, d.key)
        if ref not in found:
            before = known.get(ref)
            found[ref] = (
                d
                if before is None
                else DriftItem(
                    d.element,
                    d.collection,
                    d.key,
                    d.kind,
                    d.resource,
                    d.change,
                    d.fields,
                    d.revision,
                    before.state,
                    before.note,
                    before.first_seen,
                    d.last_seen,
                )
            )
    result = Review(found)
    with journal.transaction():
        for element, refs in sorted((missed or {}).items()):
            if refs:
                journal.add_event(
                    "feed_missed",
                    feed_missed_message(element, refs),
                    element=element,
                    run_id=run_id,
                )
        result.new = journal.upsert_drift(found.values())
        what = "to be overwritten (drift mode correct)" if mode == "correct" else f"held ({HINT})"
        for element, items in sorted(by_element(result.new).items()):
            journal.add_event(
                "drift", describe(element, items, what), element=element, run_id=run_id
            )
        if settle:
            planned = {
                (ep.element, op.collection, op.key) for ep in plan.elements for op in ep.operations
            }
            observed = {ep.element for ep in plan.elements if ep.observed}
            gone: dict[str, list[tuple[str, str]]] = {}
            for ref, d in known.items():
                if d.element in observed and ref not in planned:
                    gone.setdefault(d.element, []).append((d.collection, d.key))
            for element, keys in sorted(gone.items()):
                items = journal.clear_drift(element, keys)
                result.cleared += items
                journal.add_event(
                    "drift",
                    f"drift on {element} gone: "
                    + ", ".join(f"{d.collection}/{d.key}" for d in items[:SHOWN])
                    + (f", and {len(items) - SHOWN} more" if len(items) > SHOWN else "")
                    + " equal(s) the config again",
                    element=element,
                    run_id=run_id,
                )
    return result


def feed_missed_message(element: str, refs: Iterable[tuple[str, str]]) -> str:
    """The event of a full read that found changes the change feed never named."""
    named = sorted(refs)
    shown = ", ".join(f"{c}/{k}" for c, k in named[:SHOWN])
    more = f", and {len(named) - SHOWN} more" if len(named) > SHOWN else ""
    return (
        f"change feed of {element} missed {len(named)} change(s) a full read found: "
        f"{shown}{more}; its feed cannot be trusted (check the element's change log)"
    )


def corrected(
    journal: Journal, element: str, refs: list[tuple[str, str]], run_id: int | None
) -> list[DriftItem]:
    """Close the drift items of records this run overwrote, with an event."""
    with journal.transaction():
        items = journal.clear_drift(element, refs)
        if items:
            journal.add_event(
                "drift",
                describe(element, items, "corrected (overwritten with the config)"),
                element=element,
                run_id=run_id,
            )
    return items


def capture(journal: Journal, elements: list[str], branch: str) -> list[DriftItem]:
    """`import --drift` put what the elements hold on `branch`: their drift items
    are captured (an event each element), held until merged or overwritten."""
    with journal.transaction():
        items = journal.capture_drift(elements, branch)
        for element, mine in sorted(by_element(items).items()):
            journal.add_event(
                "drift",
                f"drift on {element} captured on branch {branch}: "
                + ", ".join(f"{d.collection}/{d.key}" for d in mine[:SHOWN])
                + (f", and {len(mine) - SHOWN} more" if len(mine) > SHOWN else ""),
                element=element,
            )
    return items


def preview_lines(plan: Plan, state_dir: Path, settings: Settings) -> list[str]:
    """For `provgit plan`: the planned records that have drifted and what an
    apply would do with them. Reads the journal (none yet: no lines), and
    what full reads found the change feeds missed (kept with the cache)."""
    cache = ObservationCache(state_dir)
    missed = {ep.element: cache.missed(ep.element) for ep in plan.elements}
    if not journal_exists(state_dir):
        return []
    try:
        with Journal.open(state_dir) as journal:
            found = detect(plan, journal, missed=missed)
    except JournalError:
        return []
    mode = mode_for(settings)
    lines = []
    for d in found.values():
        what = hold_message(d) if mode == "report" else "overwritten by apply (drift mode correct)"
        fields = f" ({', '.join(d.fields)})" if d.fields else ""
        lines.append(
            f"drift: {d.collection}/{d.key} on {d.element} {d.change} outside provgit"
            f"{fields}: {what}"
        )
    return lines


def hold_message(item: DriftItem) -> str:
    if item.state == "captured" and item.note:
        return (
            f"held: drift on {item.element} captured on branch {item.note} "
            "(merge it, or run apply --overwrite-drift)"
        )
    return f"held: drift on {item.element} ({HINT})"
