"""The status document derived from the target, the elements' last
observations and the journal (`report.derive`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provgit.apply import standing
from provgit.apply import status as st
from provgit.apply.result import ApplyResult
from provgit.incremental.store import TargetStore
from provgit.journal import Journal, Suspension
from provgit.model.state import DesiredState
from provgit.observe import Observation
from provgit.plan.model import ElementPlan
from provgit.projection.project import Target
from provgit.report import derive as dv
from provgit.report import derived_part as reuse
from provgit.report.document_common import (
    FORMAT,
    Document,
    GitSource,
    Links,
    held_text,
    iso_now,
    ivr_service_alarm,
    run_entry,
)
from provgit.report.journal_read import element_revisions
from provgit.report.read_only import detail_of, read_only_entries
from provgit.secrets import redact


def derived_document(
    journal: Journal,
    source: Target | TargetStore,
    memo_digest: str | None,
    types: dict[str, str],
    observations: Mapping[str, Observation] | None,
    state_dir: Path,
    links: Links,
    plans: Mapping[str, ElementPlan] | None,
    target_version: object,
    target_delta: Any,
    *,
    network: str | None,
    result: ApplyResult | None,
    git: GitSource | None,
    max_events: int,
    max_resources: int,
    state: DesiredState | None = None,
) -> Document:
    now = iso_now()
    rows = journal.element_statuses()
    by_plan = {
        name: (p.observed_revision, dv.plan_ops(p.operations))
        for name, p in (plans or {}).items()
        if p.observed_revision is not None
    }
    facts = dv.element_facts(
        types, state_dir, dv.element_rows(journal.path), observations, memo_digest, by_plan
    )
    jf = dv.journal_facts(journal.path, {n: f.revision for n, f in facts.items()})

    key = (
        reuse.reuse_key(memo_digest, types, facts, jf, links, max_resources)
        if isinstance(source, TargetStore) and observations is None and plans is None
        else None
    )
    part = reuse.load_part(state_dir, key) if key is not None else None
    if part is None:
        part = _derive_part(
            source, facts, jf, links, types, by_plan, target_version, target_delta, max_resources
        )
        if key is not None:
            reuse.save_part(state_dir, key, part)
    doc = _document_from(
        journal,
        part,
        jf,
        facts,
        types,
        links,
        now,
        rows,
        network=network,
        result=result,
        git=git,
        max_events=max_events,
        max_resources=max_resources,
    )
    # Not in the watcher's reports (`plans`): the comparison projects the
    # whole config, which its runs otherwise re-plan only in part.
    if part.read_only and state is not None and plans is None:
        _read_only_details(doc, state, facts, state_dir, max_resources)
    return doc


def _derive_part(
    source: Target | TargetStore,
    facts: Mapping[str, dv.ElementFacts],
    jf: dv.JournalFacts,
    links: Links,
    types: dict[str, str],
    by_plan: Mapping[str, tuple[int, dict[dv.Ref, tuple[str, int | None]]]],
    target_version: object,
    target_delta: Any,
    max_resources: int,
) -> reuse.DerivedPart:
    """The derivation, and the document's part of it."""

    def part(derived: dv.Derived) -> reuse.DerivedPart:
        return reuse.part_of(derived, links, types, jf.proposed, max_resources)

    derived: dv.Derived | None = None
    if isinstance(source, TargetStore):
        derived = dv.derive_fast(source, facts, jf)
        if derived is None:
            # One element's records at a time: after a first rollout the whole
            # target (304,616 records at W100k) was held beside the plan.
            with source.one_by_one() as load:
                loaded = load("")
                if loaded is not None:
                    derived = dv.derive(loaded, facts, jf, per_element=load)
            if derived is None:
                derived = dv.derive(Target({n: {} for n in types}, {}, {}), facts, jf)
    else:
        if by_plan and target_version is not None:
            with dv.VIEW_LOCK:
                view = dv.memory_view(source, target_version, target_delta)
                derived = dv.derive_fast(view, facts, jf)
                if derived is not None:
                    # Listed under the lock too: the view is read to list resources.
                    return part(derived)
        if derived is None:
            derived = dv.derive(source, facts, jf)
    return part(derived)


def _document_from(
    journal: Journal,
    part: reuse.DerivedPart,
    jf: dv.JournalFacts,
    facts: Mapping[str, dv.ElementFacts],
    types: dict[str, str],
    links: Links,
    now: str,
    rows: Mapping[str, Mapping[str, Any]],
    *,
    network: str | None,
    result: ApplyResult | None,
    git: GitSource | None,
    max_events: int,
    max_resources: int,
) -> Document:
    suspensions = journal.suspensions()
    elements = _element_entries(journal, part, facts, types, rows, suspensions, now)
    errors, pending = _problems(jf, links)
    last_run = journal.runs(1)
    run_id = last_run[0]["id"] if last_run else None
    resources = reuse.stamped(part, run_id, now)
    by_state = part.by_state
    total_resources = part.total_resources
    not_completed = sum(n for s, n in by_state.items() if s != dv.COMPLETED)
    in_sync = part.in_sync and not errors and not pending
    worst = part.worst
    if (errors or pending) and worst == dv.COMPLETED:
        worst = dv.DISTRIBUTION_ERROR if errors else dv.PENDING
    return {
        "format": FORMAT,
        "generated": now,
        "network": network,
        "status": st.SYNC_COMPLETED if in_sync else st.SYNC_INCOMPLETE,
        "in_sync": in_sync,
        "worst": {"state": worst, "status": dv.LABELS[worst]},
        "run": run_entry(journal, result),
        "source": None
        if git is None
        else {"commit": git.commit, "dirty": git.dirty, "path": git.path},
        "alarm": {
            "level": journal.alarm_level(),
            "distribution_errors": len(errors),
            "ivr_service": ivr_service_alarm(elements),
        },
        "counts": {
            "elements": len(elements),
            "elements_not_completed": sum(
                1 for e in elements.values() if e["sync"] not in (dv.COMPLETED, dv.READ_ONLY)
            ),
            "elements_read_only": len(set(part.read_only) & set(elements)),
            "elements_not_observed": sum(1 for e in elements.values() if not e["observed"]),
            "resources": total_resources,
            "resources_not_completed": not_completed,
            "resources_omitted": total_resources - len(resources),
            "resources_by_state": dict(by_state),
            "records_not_deleted": part.records_not_deleted,
            "records_not_deleted_by_kind": dict(part.records_not_deleted_by_kind),
            "drift": part.drift,
            "drift_proposed": len(jf.proposed),
            "distribution_errors": len(errors),
            "pending_updates": len(pending),
        },
        "elements": elements,
        "resources": resources,
        "distribution_errors": errors,
        "pending_updates": pending,
        "events": [e.to_json() for e in journal.recent_events(max_events)],
        "journal_id": journal.identity(),
        "suspensions": [s.to_json() for s in suspensions.values()],
        "drift_proposed": _proposed(jf, links, max_resources),
    }


def _read_only_details(
    doc: Document,
    state: DesiredState,
    facts: Mapping[str, dv.ElementFacts],
    state_dir: Path,
    bound: int,
) -> None:
    """How each read-only element differs from what the config would put
    there (information: it is no landing, and counts in nothing)."""
    entries = read_only_entries(state, facts, state_dir, bound)
    for name, entry in entries.items():
        element = doc["elements"].get(name)
        if element is not None:
            element["read_only"] = entry
            element["detail"] = detail_of(entry)


def _proposed(jf: dv.JournalFacts, links: Links, bound: int) -> list[Document]:
    """Drifted records held while a drift branch proposes them, with the branch."""
    return [
        {
            "element": el,
            "collection": coll,
            "key": key,
            "branch": branch,
            "url": links.url(el, links.form(el, coll), coll, key),
        }
        for (el, coll, key), branch in sorted(jf.proposed.items())[:bound]
    ]


def _element_entries(
    journal: Journal,
    part: reuse.DerivedPart,
    facts: Mapping[str, dv.ElementFacts],
    types: dict[str, str],
    rows: Mapping[str, Mapping[str, Any]],
    suspensions: Mapping[str, Suspension],
    now: str,
) -> dict[str, Document]:
    """Each element's entry: its derived state, in the words the last run or a hold gives it."""
    revisions = element_revisions(journal.path)
    # A run killed mid-apply (SIGKILL, power loss) leaves its "Synching" rows
    # behind until the next run settles it: nothing is writing there.
    dead = {run["id"] for run in standing.dead_runs(journal)}
    elements: dict[str, Document] = {}
    for name in sorted(types):
        f = facts[name]
        s = part.elements[name]
        row = rows.get(name)
        text = dv.element_text(name, s, types[name])
        if s == dv.READ_ONLY and not f.readable:
            text = f"Read only: not observed ({dv.label(f.state, types[name])})"
        cls = dv.status_class_of(s)
        if (
            row is not None
            and row["status"].startswith("Synching ")
            and f.readable
            and row["run_id"] not in dead
        ):
            text = row["status"]  # a run is writing there right now
        else:
            held = held_text(name, s, row, suspensions)
            if held is not None:
                text, cls = held, "held"
        elements[name] = {
            "status": text,
            "class": cls,
            "sync": s,
            "observed": f.readable,
            "state": f.state if not f.readable else (row["state"] if row else f.state),
            "type": types[name] or None,
            "revision": revisions.get(name),
            "run_id": row["run_id"] if row else None,
            "detail": f.detail if not f.readable else (row["detail"] if row else None),
            "time": row["time"] if row else now,
            "records_not_deleted": part.not_deleted.get(name, 0),
            "full_read_at": None
            if f.full_read_at is None
            else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(f.full_read_at)),
        }
    return elements


def _problems(jf: dv.JournalFacts, links: Links) -> tuple[list[Document], list[Document]]:
    """Distribution errors (by action) and pending updates (by record), with their links."""
    errors = []
    for de in jf.errors.values():
        d = de.to_json()
        d["detail"] = redact(d["detail"])
        d["url"] = links.url(de.element, de.form, de.collection, de.key)
        errors.append(d)
    errors.sort(key=lambda d: d["action_id"])
    pending = []
    for p in sorted(jf.pending.values(), key=lambda p: (p.element, p.collection, p.key)):
        d = p.to_json()
        d["form"] = links.form(p.element, p.collection)
        d["url"] = links.url(p.element, d["form"], p.collection, p.key)
        pending.append(d)
    return errors, pending
