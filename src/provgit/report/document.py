"""The status document: one value every report is rendered from.

`build_document` reads the journal (and, when given, the run's result and the
desired state for element types and reach-through links) and returns a plain
JSON-ready dict in the `provgit.status/1` format described by
`schemas/status.schema.json`. Renderers (`markdown`, `html`, `atom`, `text`)
are functions of this value; nothing here prints or writes files.

Bounded on purpose: a report lists every problem (distribution errors,
pending updates, resources not completed) in full, and completed resources
only up to `MAX_RESOURCES`, so a 100,000-user network gets a page a browser
can open.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provgit.apply import standing
from provgit.apply import status as st
from provgit.apply.result import ApplyResult
from provgit.journal import NETWORK, Journal, JournalReader, Suspension, read_journal
from provgit.model.state import DesiredState
from provgit.observe import Observation
from provgit.plan.model import ElementPlan
from provgit.projection.project import COLLECTION_KIND, Target
from provgit.projection.store import TargetStore
from provgit.records import form_name_of
from provgit.render.values import reach_through
from provgit.report import derive as dv
from provgit.secrets import redact

FORMAT = "provgit.status/1"
MAX_EVENTS = 50
MAX_RESOURCES = 2000
# Status strings in the seeds' words, grouped for colouring and filtering.
OK_STATUSES = frozenset({st.SYNC_COMPLETED})
DOWN_STATUSES = frozenset({st.OFFLINE, st.STOPPED, st.IVR_DOWN, st.TOKEN_REFUSED})

Document = dict[str, Any]
_OP_COUNTS = ("ok", "failed", "pending", "skipped", "held")


@dataclass(frozen=True)
class GitSource:
    """Where the applied config came from in git (see `report.notes.git_source`)."""

    commit: str
    dirty: bool
    path: str  # the config directory, relative to the repository root ("." for the root)


def iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# A suspension or a sync window holds the element's writes (apply/holds.py).
HELD_PREFIXES = ("Suspended: ", "Held by window ")


def status_class(status: str) -> str:
    """ok / syncing / failed / down / held: how a status string is shown (never what it says)."""
    if status in OK_STATUSES:
        return "ok"
    if status in DOWN_STATUSES or status in (dv.IVR_DOWN, dv.UNKNOWN_TEXT):
        return "down"
    if status.startswith(("Synching ", "Syncing ")):
        return "syncing"
    if status.startswith(HELD_PREFIXES):
        return "held"
    return "failed"


def _held_text(
    name: str,
    state: str,
    row: Mapping[str, Any] | None,
    suspensions: Mapping[str, Suspension],
) -> str | None:
    """What holds an element's work, when nothing worse is wrong there: a
    suspension (from the journal, so it shows before the next run) or the
    sync window the last run named. Down, drifted or failed elements keep
    those words: they need a person more than a hold does."""
    if state not in (dv.PENDING, dv.NOT_APPLIED, dv.COMPLETED):
        return None
    s = suspensions.get(name) or suspensions.get(NETWORK)
    if s is not None:
        return s.describe()
    last = row["status"] if row is not None else ""
    if state != dv.COMPLETED and last.startswith("Held by window "):
        return str(last)
    return None


# Element syncs (derived) and statuses (remembered) of an element that is down.
_DOWN_SYNCS = frozenset({"offline", "stopped", "token_refused", "error"})


def ivr_service_alarm(elements: Mapping[str, Document]) -> list[str]:
    """IVR servers whose services are stopped or that cannot be reached: the
    IVR seed's service alarm, beside SDS's data distribution alarm (that one
    counts refused records; this one says IVR content cannot be delivered)."""
    return sorted(
        name
        for name, e in elements.items()
        if e.get("type") == "ivr"
        and (e.get("sync") in _DOWN_SYNCS or e.get("status") in DOWN_STATUSES)
    )


def _safe_url(url: str | None) -> str | None:
    # Templates come from the config; only web links are ever rendered, so a
    # `javascript:` template cannot turn a report into a script.
    if url and url.lower().startswith(("https://", "http://")):
        return url
    return None


class _Links:
    """Reach-through links from element templates (none without a desired state)."""

    def __init__(self, state: DesiredState | None, result: ApplyResult | None) -> None:
        self.templates: dict[str, str | None] = {}
        self.types: dict[str, str] = {}
        if result is not None:
            self.types.update({e.element: e.element_type for e in result.elements})
        if state is not None:
            self.add(state.elements)

    def add(self, elements: Mapping[str, Any]) -> None:
        for name, el in elements.items():
            self.templates[name] = el.reach_through
            self.types[name] = el.type

    def form(self, element: str, collection: str) -> str:
        return form_name_of(collection, self.types.get(element))

    def url(self, element: str, form: str, collection: str, key: str) -> str | None:
        return _safe_url(reach_through(self.templates.get(element), element, form, collection, key))

    def link(self, element: str, collection: str, key: str, form: str | None = None) -> Document:
        form = form or self.form(element, collection)
        return {
            "element": element,
            "form": form,
            "collection": collection,
            "key": key,
            "url": self.url(element, form, collection, key),
        }


def _element_revisions(path: Path) -> dict[str, int]:
    """The last revision each element answered a provgit write with.

    Read through a separate read-only connection (reports run beside writers).
    """
    return read_journal(path, JournalReader.last_revisions, {})


def _run(journal: Journal, result: ApplyResult | None) -> Document | None:
    runs = journal.runs(1)
    last = runs[0] if runs else None
    if result is not None:
        return {
            "id": result.run_id,
            "command": last["command"] if last and last["id"] == result.run_id else None,
            "started": result.started or None,
            "finished": result.finished or None,
            "status": result.overall,
            "outcome": "refused" if result.refusal else result.overall,
            "refusal": result.refusal,
            "exit_code": result.exit_code(),
            "counts": result.counts(),
        }
    if last is None:
        return None
    summary = last["summary"] or {}
    counts = summary.get("counts") or {}
    return {
        "id": last["id"],
        "command": last["command"],
        "started": _iso(last["started"]),
        "finished": _iso(last["finished"]),
        "status": last["outcome"]
        if last["outcome"] in (st.SYNC_COMPLETED, st.SYNC_INCOMPLETE)
        else None,
        "outcome": last["outcome"],
        "refusal": None,
        "exit_code": summary.get("exit_code"),
        "counts": {
            k: int(counts.get(k, 0)) for k in ("ok", "failed", "pending", "skipped", "held")
        },
    }


def _iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def build_document(
    journal: Journal,
    *,
    network: str | None = None,
    result: ApplyResult | None = None,
    state: DesiredState | None = None,
    git: GitSource | None = None,
    max_events: int = MAX_EVENTS,
    max_resources: int = MAX_RESOURCES,
    target: Target | None = None,
    observations: Mapping[str, Observation] | None = None,
    state_dir: Path | None = None,
    plans: Mapping[str, ElementPlan] | None = None,
    target_version: object = None,
    target_delta: Any = None,
) -> Document:
    """The latest state of the network, as a value.

    Resource and element statuses are derived (`report.derive`) from `target`
    (default: the one the last plan stored under the state directory), the
    elements' last observations (`observations`, default: the cache files) and
    the journal. With no target anywhere (nothing planned yet), the statuses
    the journal remembers are shown, and the network is not in sync.

    `plans` (the watcher's last plan of each element, against `target` at
    `target_version`) stand for the observations they were planned from, so
    only what they name is looked at; `target_delta` (`derive.memory_view`)
    keeps the view of the target up to date from run to run.
    """
    links = _Links(state, result)
    sdir = state_dir if state_dir is not None else journal.path.parent
    derived_from = _derive_inputs(sdir, state, target, links)
    if derived_from is not None:
        if network is None:
            network = result.network if result is not None else derived_from[2]
        return _derived_document(
            journal,
            derived_from[0],
            derived_from[3],
            derived_from[1],
            observations,
            sdir,
            links,
            plans,
            target_version,
            target_delta,
            network=network,
            result=result,
            git=git,
            max_events=max_events,
            max_resources=max_resources,
        )
    if network is None:
        network = (
            result.network
            if result is not None
            else state.settings.network
            if state is not None
            else None
        )
    revisions = _element_revisions(journal.path)
    elements: dict[str, Document] = {}
    for name, row in sorted(journal.element_statuses().items()):
        elements[name] = {
            "status": row["status"],
            "class": status_class(row["status"]),
            "state": row["state"],
            "type": links.types.get(name),
            "revision": revisions.get(name),
            "run_id": row["run_id"],
            "detail": row["detail"],
            "time": row["time"],
        }

    # Where each resource landed in this run, for its reach-through links.
    landed: dict[tuple[str, str], list[Document]] = {}
    if result is not None:
        for e in result.elements:
            for op in e.operations:
                if op.action != "delete":
                    landed.setdefault((op.kind, op.resource), []).append(
                        links.link(e.element, op.collection, op.key)
                    )

    errors = []
    for de in journal.distribution_errors():
        d = de.to_json()
        d["detail"] = redact(d["detail"])
        d["url"] = links.url(de.element, de.form, de.collection, de.key)
        errors.append(d)
    pending = []
    for p in journal.pending():
        d = p.to_json()
        d["form"] = links.form(p.element, p.collection)
        d["url"] = links.url(p.element, d["form"], p.collection, p.key)
        pending.append(d)
    problem_links: dict[tuple[str, str], list[Document]] = {}
    for d in (*errors, *pending):
        problem_links.setdefault((d["kind"], d["resource"]), []).append(
            links.link(d["element"], d["collection"], d["key"], d["form"])
        )

    all_resources = journal.resource_statuses()
    # Problems first, so a bound never hides one.
    all_resources.sort(key=lambda r: (r["status"] == st.SYNC_COMPLETED, r["kind"], r["resource"]))
    by_status: dict[str, int] = {}
    for r in all_resources:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    resources = []
    for r in all_resources[:max_resources]:
        key = (r["kind"], r["resource"])
        resources.append(
            {
                "kind": r["kind"],
                "resource": r["resource"],
                "status": r["status"],
                "class": status_class(r["status"]),
                "completed": r["completed"],
                "total": r["total"],
                # SDS's sharing icon: the same data lands on several elements.
                "shared": r["total"] > 1,
                "run_id": r["run_id"],
                "time": r["time"],
                "links": _unique(landed.get(key, []) + problem_links.get(key, [])),
            }
        )

    events = [e.to_json() for e in journal.recent_events(max_events)]
    level = journal.alarm_level()
    not_completed = sum(n for s, n in by_status.items() if s != st.SYNC_COMPLETED)
    in_sync = (
        not errors
        and not pending
        and not_completed == 0
        and all(e["status"] == st.SYNC_COMPLETED for e in elements.values())
    )
    return {
        "format": FORMAT,
        "generated": iso_now(),
        "network": network,
        "status": st.SYNC_COMPLETED if in_sync else st.SYNC_INCOMPLETE,
        "in_sync": in_sync,
        "run": _run(journal, result),
        "source": None
        if git is None
        else {"commit": git.commit, "dirty": git.dirty, "path": git.path},
        "alarm": {
            "level": level,
            "distribution_errors": len(errors),
            "ivr_service": ivr_service_alarm(elements),
        },
        "counts": {
            "elements": len(elements),
            "elements_not_completed": sum(
                1 for e in elements.values() if e["status"] != st.SYNC_COMPLETED
            ),
            "resources": len(all_resources),
            "resources_not_completed": not_completed,
            "resources_omitted": len(all_resources) - len(resources),
            "distribution_errors": len(errors),
            "pending_updates": len(pending),
        },
        "elements": elements,
        "resources": resources,
        "distribution_errors": errors,
        "pending_updates": pending,
        "events": events,
        "suspensions": [s.to_json() for s in journal.suspensions().values()],
    }


def _derive_inputs(
    state_dir: Path, state: DesiredState | None, target: Target | None, links: _Links
) -> tuple[Target | TargetStore, dict[str, str], str | None, str | None] | None:
    """The target and element types to derive from: the caller's, else the
    last plan's (the memo under the state directory); and the digest of the
    target when it is the last plan's (its per-element memos then stand for
    readings of the elements)."""
    from provgit.plan.memo import PlanMemo

    network = state.settings.network if state is not None else None
    digest = None
    store: TargetStore | None = None
    if target is None or not target.records:
        memo = PlanMemo(state_dir)
        store = TargetStore(memo.target_path)
        digest = store.digest()
        if digest is None:
            return None
        target = None
        if state is None:
            meta = memo.load_meta()
            if meta is None:
                return None
            links.add(meta.elements)
            network = meta.settings.network
    if state is not None:
        types: dict[str, str] = {n: str(e.type) for n, e in state.elements.items()}
    elif target is not None:
        types = {n: links.types.get(n, "") for n in target.records}
    else:
        types = dict(links.types)
    found = target if target is not None else store
    assert found is not None
    return found, types, network, digest


def _derived_document(
    journal: Journal,
    source: Target | TargetStore,
    memo_digest: str | None,
    types: dict[str, str],
    observations: Mapping[str, Observation] | None,
    state_dir: Path,
    links: _Links,
    plans: Mapping[str, ElementPlan] | None,
    target_version: object,
    target_delta: Any,
    *,
    network: str | None,
    result: ApplyResult | None,
    git: GitSource | None,
    max_events: int,
    max_resources: int,
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

    def finish(derived: dv.Derived) -> Document:
        return _document_from(
            journal,
            derived,
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

    derived: dv.Derived | None = None
    if isinstance(source, TargetStore):
        derived = dv.derive_fast(source, facts, jf)
        if derived is None:
            loaded = source.load()
            if loaded is None:
                loaded = Target({n: {} for n in types}, {}, {})
            derived = dv.derive(loaded, facts, jf)
    else:
        if by_plan and target_version is not None:
            with dv.VIEW_LOCK:
                view = dv.memory_view(source, target_version, target_delta)
                derived = dv.derive_fast(view, facts, jf)
                if derived is not None:
                    # Listed under the lock too: the view is read to list resources.
                    return finish(derived)
        if derived is None:
            derived = dv.derive(source, facts, jf)
    return finish(derived)


def _document_from(
    journal: Journal,
    derived: dv.Derived,
    jf: dv.JournalFacts,
    facts: Mapping[str, dv.ElementFacts],
    types: dict[str, str],
    links: _Links,
    now: str,
    rows: Mapping[str, Mapping[str, Any]],
    *,
    network: str | None,
    result: ApplyResult | None,
    git: GitSource | None,
    max_events: int,
    max_resources: int,
) -> Document:
    revisions = _element_revisions(journal.path)
    suspensions = journal.suspensions()
    # A run killed mid-apply (SIGKILL, power loss) leaves its "Synching" rows
    # behind until the next run settles it: nothing is writing there.
    dead = {run["id"] for run in standing.dead_runs(journal)}

    elements: dict[str, Document] = {}
    for name in sorted(types):
        f = facts[name]
        s = derived.elements[name]
        row = rows.get(name)
        text = dv.element_text(name, s, types[name])
        cls = dv.status_class_of(s)
        if (
            row is not None
            and row["status"].startswith("Synching ")
            and f.readable
            and row["run_id"] not in dead
        ):
            text = row["status"]  # a run is writing there right now
        else:
            held = _held_text(name, s, row, suspensions)
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
            "records_not_deleted": len(derived.deletes_not_applied.get(name, ())),
        }

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

    ordered = sorted(
        derived.resources.values(),
        key=lambda r: (r.state == dv.COMPLETED, r.kind, r.resource),
    )
    by_state: dict[str, int] = {}
    for r in ordered:
        by_state[r.state] = by_state.get(r.state, 0) + 1
    if derived.completed_extra:
        by_state[dv.COMPLETED] = by_state.get(dv.COMPLETED, 0) + derived.completed_extra
    listed = ordered[:max_resources]
    if derived.store is not None:
        # Completed resources the summary did not look at, to the bound.
        room = max_resources - len(listed)
        if room > 0 and derived.completed_extra:
            for k, res, n in derived.store.first_resources(room, set(derived.resources)):
                listed.append(dv.ResourceState(k, res, dv.COMPLETED, n, n, {}, {}))
        # Every element of each listed resource, those not looked at being completed.
        lands = derived.store.landing_of(
            (r.kind, r.resource) for r in listed if len(r.elements) < r.total
        )
        for r in listed:
            for el, ref in lands.get((r.kind, r.resource), {}).items():
                if el not in r.elements:
                    r.elements[el] = dv.COMPLETED
                    r.records[el] = ref
    total_resources = len(ordered) + derived.completed_extra
    last_run = journal.runs(1)
    run_id = last_run[0]["id"] if last_run else None
    resources = []
    for r in listed:
        per: dict[str, Document] = {}
        rlinks = []
        for el, s in sorted(r.elements.items()):
            coll, key = r.records[el]
            link = links.link(el, coll, key)
            rlinks.append(link)
            per[el] = {
                "state": s,
                "status": dv.label(s, types.get(el)),
                "collection": coll,
                "key": key,
                "url": link["url"],
            }
        text = dv.resource_text(r, types)
        resources.append(
            {
                "kind": r.kind,
                "resource": r.resource,
                "status": text,
                "class": dv.status_class_of(r.state),
                "state": r.state,
                "completed": r.completed,
                "total": r.total,
                # SDS's sharing icon: the same data lands on several elements.
                "shared": r.total > 1,
                "run_id": run_id,
                "time": now,
                "links": rlinks,
                "elements": per,
            }
        )
    not_completed = sum(n for s, n in by_state.items() if s != dv.COMPLETED)
    in_sync = derived.in_sync and not errors and not pending
    worst = derived.worst()
    for r in ordered:
        worst = dv.worst(worst, r.state)
        if r.state != dv.COMPLETED:
            break  # sorted problems first; the elements already carry the worst
    if (errors or pending) and worst == dv.COMPLETED:
        worst = dv.DISTRIBUTION_ERROR if errors else dv.PENDING
    return {
        "format": FORMAT,
        "generated": now,
        "network": network,
        "status": st.SYNC_COMPLETED if in_sync else st.SYNC_INCOMPLETE,
        "in_sync": in_sync,
        "worst": {"state": worst, "status": dv.LABELS[worst]},
        "run": _run(journal, result),
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
                1 for e in elements.values() if e["sync"] != dv.COMPLETED
            ),
            "elements_not_observed": sum(1 for e in elements.values() if not e["observed"]),
            "resources": total_resources,
            "resources_not_completed": not_completed,
            "resources_omitted": total_resources - len(resources),
            "resources_by_state": dict(sorted(by_state.items())),
            "records_not_deleted": sum(len(v) for v in derived.deletes_not_applied.values()),
            "records_not_deleted_by_kind": _not_deleted_by_kind(derived),
            "drift": sum(len(v) for v in derived.drift.values()),
            "distribution_errors": len(errors),
            "pending_updates": len(pending),
        },
        "elements": elements,
        "resources": resources,
        "distribution_errors": errors,
        "pending_updates": pending,
        "events": [e.to_json() for e in journal.recent_events(max_events)],
        "suspensions": [s.to_json() for s in suspensions.values()],
    }


def _not_deleted_by_kind(derived: dv.Derived) -> dict[str, int]:
    """Records still to delete, by the kind of resource they were (so that
    `status --kind users` does not answer for a removed user still there)."""
    out: dict[str, int] = {}
    for refs in derived.deletes_not_applied.values():
        for coll, _key in refs:
            kind = COLLECTION_KIND.get(coll, coll)
            out[kind] = out.get(kind, 0) + 1
    return dict(sorted(out.items()))


def _on_element(r: Document, element: str) -> Document:
    """A derived resource as it stands on one element (its state there, 1/1 or 0/1)."""
    here = r.get("elements", {}).get(element)
    if here is None:
        return r
    done = here["state"] == dv.COMPLETED
    text = (
        st.SYNC_COMPLETED
        if done
        else dv.resource_text(
            dv.ResourceState(r["kind"], r["resource"], here["state"], 0, 1, {}, {}), {}
        )
    )
    return {
        **r,
        "status": text,
        "class": dv.status_class_of(here["state"]),
        "state": here["state"],
        "completed": int(done),
        "total": 1,
        "links": [x for x in r["links"] if x["element"] == element],
        "elements": {element: here},
    }


SERVER_PAGE = "See the Server page to view the Status of Remote Servers."


def worst_line(doc: Document) -> str | None:
    """The worst thing in the network, in the seeds' words, naming where it is:
    a refused config first (the watcher keeps the last good one), then the
    worst derived state. None when all is well."""
    refused = (doc.get("watch") or {}).get("refused")
    if refused:
        n = refused.get("count", 0)
        return f"Config refused: {n} problem(s); the last good config stays applied"
    worst = doc.get("worst")
    if not worst or worst["state"] == dv.COMPLETED:
        if doc["in_sync"]:
            return None
        return st.SYNC_INCOMPLETE
    state = worst["state"]
    where = [n for n, e in doc["elements"].items() if e.get("sync") == state]
    if where:
        e = doc["elements"][where[0]]
        text = e["status"] if state != dv.DRIFT else f"Drift on {where[0]}"
        more = f" (and {len(where) - 1} more element(s))" if len(where) > 1 else ""
        if state in (dv.OFFLINE, dv.STOPPED, dv.TOKEN_REFUSED, dv.UNREADABLE, dv.UNKNOWN):
            text = f"{where[0]}: {e['status']}"
        return text + more
    return str(worst["status"])


def _unique(links: Iterable[Document]) -> list[Document]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for link in links:
        k = (link["element"], link["collection"], link["key"])
        if k not in seen:
            seen.add(k)
            out.append(link)
    return out


def filtered(doc: Document, *, element: str | None = None, kind: str | None = None) -> Document:
    """The document narrowed to one element and/or one resource kind.

    An element keeps its own status, its distribution errors and pending
    updates, and the resources with a link or a problem on it; a kind keeps
    that kind's resources, errors and pending updates. `in_sync` and
    `status` are recomputed for what is left, so `provgit status --element X`
    answers for X alone.
    """
    if element is None and kind is None:
        return doc

    def keep(d: Mapping[str, Any]) -> bool:
        return (element is None or d["element"] == element) and (kind is None or d["kind"] == kind)

    errors = [d for d in doc["distribution_errors"] if keep(d)]
    pending = [d for d in doc["pending_updates"] if keep(d)]
    problem = {(d["kind"], d["resource"]) for d in (*errors, *pending)}
    resources = [
        r
        for r in doc["resources"]
        if (kind is None or r["kind"] == kind)
        and (
            element is None
            or (r["kind"], r["resource"]) in problem
            or any(link["element"] == element for link in r["links"])
        )
    ]
    if element is not None:
        resources = [_on_element(r, element) for r in resources]
    elements = {n: e for n, e in doc["elements"].items() if element is None or n == element}
    events = [
        e
        for e in doc["events"]
        if (element is None or e["element"] == element)
        and (kind is None or (e["resource"] or "").startswith(f"{kind}/"))
    ]
    not_completed = sum(1 for r in resources if r["status"] != st.SYNC_COMPLETED)
    # A kind alone answers for that kind: an element's status covers every kind.
    elements_count = element is not None or kind is None
    # Records of that kind the config no longer has, still on an element.
    not_deleted = (
        (doc["counts"].get("records_not_deleted_by_kind") or {}).get(kind, 0) if kind else 0
    )
    in_sync = (
        not errors
        and not pending
        and not_completed == 0
        and not not_deleted
        and (not elements_count or all(e["status"] == st.SYNC_COMPLETED for e in elements.values()))
    )
    return {
        **doc,
        "status": st.SYNC_COMPLETED if in_sync else st.SYNC_INCOMPLETE,
        "in_sync": in_sync,
        "filter": {"element": element, "kind": kind},
        "counts": {
            **doc["counts"],
            "elements": len(elements),
            "elements_not_completed": sum(
                1 for e in elements.values() if e["status"] != st.SYNC_COMPLETED
            ),
            "resources": len(resources),
            "resources_not_completed": not_completed,
            "resources_omitted": 0,
            "distribution_errors": len(errors),
            "pending_updates": len(pending),
        },
        "elements": elements,
        "resources": resources,
        "distribution_errors": errors,
        "pending_updates": pending,
        "events": events,
        **({"suspensions": doc["suspensions"]} if "suspensions" in doc else {}),
    }
