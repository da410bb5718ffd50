"""Reading a status document: its worst line in the seeds' words, and the
document narrowed to one element or one kind (`provgit status --element/--kind`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from provgit.apply import status as st
from provgit.report import derive as dv
from provgit.report.document_common import Document

SERVER_PAGE = "See the Server page to view the Status of Remote Servers."


def worst_line(doc: Document) -> str | None:
    """The worst thing in the network, in the seeds' words, naming where it is:
    a refused config first (the watcher keeps the last good one), then the
    worst derived state. None when all is well."""
    refused = (doc.get("watch") or {}).get("refused")
    if refused:
        n = refused.get("count", 0)
        return f"Config refused: {n} problem(s); the last good config stays applied"
    if (doc.get("secrets_unavailable") or {}).get("config_changed"):
        return NOT_DERIVED
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


NOT_DERIVED = (
    "Not derived: the config changed since the last plan and secret values are not set here"
)


def without_secret_values(doc: Document, unresolved: int, config_changed: bool) -> Document:
    """`doc`, derived where secret values could not be read, saying so. With
    the config changed since the last plan, the document is the last plan's
    config's, and it is not in sync: nothing here knows whether the change
    landed (a PIN cannot be compared without its value)."""
    if config_changed:
        note = (
            f"secret values are not set here ({unresolved} reference(s) unresolved) and "
            "the config (or provgit) changed since the last plan: its status cannot be "
            "derived without them; shown is the status of the last plan's config. Run "
            "`provgit plan` where the secrets are set."
        )
    else:
        note = (
            f"secret values are not set here ({unresolved} reference(s) unresolved): "
            "a secret whose value changed since the last plan is not seen."
        )
    out = {
        **doc,
        "secrets_unavailable": {
            "unresolved": unresolved,
            "config_changed": config_changed,
            "note": note,
        },
    }
    if config_changed:
        out["in_sync"] = False
        out["status"] = st.SYNC_INCOMPLETE
    return out


def unique_links(links: Iterable[Document]) -> list[Document]:
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
