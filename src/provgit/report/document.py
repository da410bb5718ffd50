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

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provgit.apply import status as st
from provgit.apply.result import ApplyResult
from provgit.journal import Journal
from provgit.journal.db import last_writes
from provgit.model.state import DesiredState
from provgit.records import form_name_of
from provgit.render.values import reach_through
from provgit.secrets import redact

FORMAT = "provgit.status/1"
MAX_EVENTS = 50
MAX_RESOURCES = 2000
# Status strings in the seeds' words, grouped for colouring and filtering.
OK_STATUSES = frozenset({st.SYNC_COMPLETED})
DOWN_STATUSES = frozenset({st.OFFLINE, st.STOPPED})

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
    if status in DOWN_STATUSES:
        return "down"
    if status.startswith(("Synching ", "Syncing ")):
        return "syncing"
    if status.startswith(HELD_PREFIXES):
        return "held"
    return "failed"


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
            for name, el in state.elements.items():
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
    if not path.exists():
        return {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=15)
    except sqlite3.Error:
        return {}
    try:
        with contextlib.closing(db):
            return {name: revision for name, (_, revision) in last_writes(db).items()}
    except sqlite3.Error:
        return {}


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
) -> Document:
    """The latest state of the network as the journal knows it, as a value."""
    links = _Links(state, result)
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
        "alarm": {"level": level, "distribution_errors": len(errors)},
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
    in_sync = (
        not errors
        and not pending
        and not_completed == 0
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
