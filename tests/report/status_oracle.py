"""The oracle of the status model tests (test_status_model*.py): what the
status of a network must be, computed from the config (through the same
targeting code that plans) and what the elements hold (read straight from
their stores), never from provgit's journal or observations.

Shared by the model over embedded elements and the one over simulator
processes; only how an element is read differs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provgit.api.network import desired_target
from provgit.incremental.disk import PlanMemo
from provgit.incremental.store import TargetStore
from provgit.journal.db import Journal
from provgit.journal.rows import PendingUpdate
from provgit.observe import own_fields
from provgit.plan.compute import field_changes
from provgit.plan.moves import MOVE_PENDING
from provgit.projection.project import Target
from provgit.records import MANAGED_BY, MANAGED_BY_VALUE
from provgit.report import derive as dv
from provgit.simulator import rules
from provgit.simulator.store import ElementStore
from provgit.source import read_directory
from provgit.validate import validate_source

Ref3 = tuple[str, str, str]
Resource = tuple[str, str]


@dataclass
class ElementTruth:
    """One element as it is: its type, its state (running / locked / offline),
    the records it holds (provgit's bookkeeping fields dropped), whether
    provgit holds a token it accepts, and the records it refuses to write
    (the simulator's injected refusals)."""

    kind: str
    state: str
    records: dict[str, dict[str, dict[str, Any]]]
    token_ok: bool = True
    refuses: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    @property
    def readable(self) -> bool:
        """provgit can read it (and so tell what it holds)."""
        return self.token_ok and self.state != "offline"


def read_element(path: Path, kind: str, **extra: Any) -> ElementTruth:
    """An element store file, read directly (WAL lets a reader sit beside the
    simulator serving it)."""
    store = ElementStore(path)
    try:
        state = store.state
        held: dict[str, dict[str, dict[str, Any]]] = {}
        rows = store._db.execute("SELECT collection, key, fields FROM records").fetchall()
        for coll, key, fields in rows:
            held.setdefault(coll, {})[key] = own_fields(json.loads(fields))
    finally:
        store.close()
    return ElementTruth(kind, state, held, **extra)


def target_of(config: Path, state_dir: Path) -> Target:
    """What the config at `config` puts on each element."""
    source = read_directory(config)
    state = validate_source(source, None).state
    return desired_target(state, source.read_other, state_dir)


class Oracle:
    """From the config and the elements alone: each resource's (completed,
    total) and per element whether it holds the resource as desired; whether
    the network is in sync; the records a locked element does not hold as
    desired (pending updates once a run tried); the records an element refuses
    by its own rules (distribution errors once a run tried) or by an injected
    refusal (`forced`, when the element could be written)."""

    def __init__(self, target: Target, elements: Mapping[str, ElementTruth]) -> None:
        self.target = target
        self.elements = dict(elements)
        per: dict[Resource, dict[str, bool]] = {}
        self.in_sync = True
        self.unwritable: set[Ref3] = set()
        self.refused: set[Ref3] = set()
        self.forced: set[Ref3] = set()
        self.down: set[str] = set()
        # (element, collection, key) desired and not held as desired
        self.differs: set[Ref3] = set()
        # provgit's records the config no longer has, still on the element
        self.leftover: set[Ref3] = set()
        for element, truth in elements.items():
            kind, held = truth.kind, truth.records
            if truth.state != "running" or not truth.token_ok:
                self.down.add(element)
            online = truth.readable
            self.in_sync = self.in_sync and online
            desired = target.records.get(element, {})
            for coll, recs in desired.items():
                for key, want in recs.items():
                    res = target.resource_of(element, coll, key)
                    got = held.get(coll, {}).get(key)
                    held_as_desired = got is not None and not field_changes(want, got)
                    if not held_as_desired:
                        self.differs.add((element, coll, key))
                    ok = online and held_as_desired
                    if rules.check_record(kind, coll, key, want):
                        self.refused.add((element, coll, key))
                    elif not held_as_desired and (coll, key) in truth.refuses:
                        if truth.state == "running" and truth.token_ok:
                            self.forced.add((element, coll, key))
                    elif not held_as_desired and truth.state == "locked" and truth.token_ok:
                        # (offline: what it holds may have changed unseen
                        # before it went down; only a locked one is read)
                        self.unwritable.add((element, coll, key))
                    here = per.setdefault(res, {})
                    here[element] = here.get(element, True) and ok
            for coll, recs in held.items():
                for key, fields in recs.items():
                    if (
                        key not in desired.get(coll, {})
                        and fields.get(MANAGED_BY) == MANAGED_BY_VALUE
                    ):
                        self.leftover.add((element, coll, key))
                        self.in_sync = False  # provgit's record the config no longer has
        self.per = per
        self.resources = {res: (sum(v.values()), len(v)) for res, v in per.items()}
        self.in_sync = self.in_sync and all(c == t for c, t in self.resources.values())


def queued_and_refused(
    sdir: Path,
    doc: dict[str, Any],
    truth: Oracle,
    just_ran: bool,
    once_refused: frozenset[Ref3] = frozenset(),
    held: frozenset[str] = frozenset(),
) -> None:
    """The pending updates and distribution errors status shows are the
    journal's; right after a run, they are what the elements make of the config.

    `once_refused`: records an element refused before. A refused record is
    held (not sent again until the config changes it or a person retries it),
    and what depends on it is skipped: its distribution error may outlive the
    refusal. `held`: elements where a record changed out of band was left in
    place (drift report mode): what depends on it stays queued."""
    with Journal.open(sdir) as j:
        rows = j.pending()
        errors = {(e.element, e.collection, e.key) for e in j.distribution_errors()}
    pending = {(p.element, p.collection, p.key) for p in rows}
    assert doc["counts"]["pending_updates"] == len(pending) == len(doc["pending_updates"])
    assert doc["counts"]["distribution_errors"] == len(errors) == len(doc["distribution_errors"])
    assert {(p["element"], p["collection"], p["key"]) for p in doc["pending_updates"]} == pending
    assert {(e["element"], e["collection"], e["key"]) for e in doc["distribution_errors"]} == errors
    if pending or errors:
        assert not doc["in_sync"]
    if not just_ran:
        return
    # A record the element's rules (or an injected fault) refuse is a
    # distribution error, not pending (or skipped: it depends on a record
    # refused before it, on this element or another).
    assert truth.refused <= errors, (errors, truth.refused)
    assert not (truth.forced - errors) or errors, (truth.forced, errors)
    # Nothing else is refused, but a record a refused delete left in the way
    # (a DN still taken) makes its successor refused too.
    in_the_way = {r[0] for r in truth.leftover}
    stray = {
        e
        for e in errors - truth.refused - truth.forced - truth.leftover - once_refused
        if e[0] not in in_the_way
    }
    assert not stray, (stray, truth.refused, truth.forced)
    # Every write a locked element did not take is queued (or refused);
    # nothing is queued for an element that took everything.
    assert truth.unwritable <= pending | errors, (truth.unwritable, pending)
    moving = _held_moves(rows, truth.down, errors)
    assert all(p[0] in truth.down | held or p in moving for p in pending), (pending, truth.down)


_HELD_UNTIL = re.compile(r"delete of (\S+)/(\S+) held until (.+) has it")
_WAITS_FOR = re.compile(r"waits for the delete of (\S+)/(\S+)$")


def _held_moves(rows: list[PendingUpdate], down: set[str], errors: set[Ref3]) -> set[Ref3]:
    """Make before break: the pending updates an element that took every
    write may keep. A record moving to an element that did not take it (down,
    or its create refused) keeps its old copy (its delete held until the new
    element has it), and the writes ordered after that delete wait for it."""
    held: set[Ref3] = set()
    for p in rows:
        m = _HELD_UNTIL.search(p.last_error) if p.last_error.startswith(MOVE_PENDING) else None
        if m is None:
            continue
        ref = (m.group(1), m.group(2))
        to = m.group(3).split(", ")
        if all(e in down or (e, *ref) in errors for e in to):
            held.add((p.element, *ref))
    waiting = {
        (p.element, p.collection, p.key)
        for p in rows
        if p.last_error.startswith(MOVE_PENDING)
        and (m := _WAITS_FOR.search(p.last_error))
        and (p.element, m.group(1), m.group(2)) in held
    }
    return held | waiting


def paths_agree(sdir: Path) -> None:
    """The summary paths (stored target, target in memory) say what reading
    every record says."""
    store = TargetStore(PlanMemo(sdir).target_path)
    target, meta = store.load(), PlanMemo(sdir).load_meta()
    if target is None or meta is None:
        return
    types = {n: str(e.type) for n, e in meta.elements.items()}
    journal = sdir / "journal.sqlite"
    facts = dv.element_facts(types, sdir, dv.element_rows(journal), None, store.digest())
    jf = dv.journal_facts(journal, {n: f.revision for n, f in facts.items()})
    full = dv.derive(target, facts, jf)
    expected = {k: (r.state, r.completed, r.total) for k, r in full.resources.items()}
    for view in (store, dv.MemoryView(target)):
        fast = dv.derive_fast(view, facts, jf)
        if fast is None:
            return
        got = {k: (r.state, r.completed, r.total) for k, r in fast.resources.items()}
        assert got == {k: v for k, v in expected.items() if k in got}
        assert {k for k, v in expected.items() if v[0] != "completed"} <= set(got)
        assert len(got) + fast.completed_extra == len(expected)
        assert fast.elements == full.elements
