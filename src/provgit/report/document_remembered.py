"""The status document when there is nothing to derive from (no plan yet):
the statuses the journal remembers, and the network is not in sync."""

from __future__ import annotations

from provgit.apply import status as st
from provgit.apply.result import ApplyResult
from provgit.journal import Journal
from provgit.report.document_common import (
    FORMAT,
    Document,
    GitSource,
    Links,
    iso_now,
    ivr_service_alarm,
    run_entry,
    status_class,
)
from provgit.report.document_views import unique_links
from provgit.report.journal_read import element_revisions
from provgit.secrets import redact


def remembered_document(
    journal: Journal,
    links: Links,
    *,
    network: str | None,
    result: ApplyResult | None,
    git: GitSource | None,
    max_events: int,
    max_resources: int,
) -> Document:
    elements = _element_entries(journal, links)
    errors, pending = _problems(journal, links)
    resources, all_count, not_completed = _resource_entries(
        journal, links, result, errors, pending, max_resources
    )
    events = [e.to_json() for e in journal.recent_events(max_events)]
    level = journal.alarm_level()
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
        "run": run_entry(journal, result),
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
            "resources": all_count,
            "resources_not_completed": not_completed,
            "resources_omitted": all_count - len(resources),
            "distribution_errors": len(errors),
            "pending_updates": len(pending),
        },
        "elements": elements,
        "resources": resources,
        "distribution_errors": errors,
        "pending_updates": pending,
        "events": events,
        "journal_id": journal.identity(),
        "suspensions": [s.to_json() for s in journal.suspensions().values()],
    }


def _element_entries(journal: Journal, links: Links) -> dict[str, Document]:
    revisions = element_revisions(journal.path)
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
    return elements


def _problems(journal: Journal, links: Links) -> tuple[list[Document], list[Document]]:
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
    return errors, pending


def _resource_entries(
    journal: Journal,
    links: Links,
    result: ApplyResult | None,
    errors: list[Document],
    pending: list[Document],
    max_resources: int,
) -> tuple[list[Document], int, int]:
    """The remembered resources to the bound, problems first; how many there
    are, and how many of them are not completed."""
    # Where each resource landed in this run, for its reach-through links.
    landed: dict[tuple[str, str], list[Document]] = {}
    if result is not None:
        for e in result.elements:
            for op in e.operations:
                if op.action != "delete":
                    landed.setdefault((op.kind, op.resource), []).append(
                        links.link(e.element, op.collection, op.key)
                    )
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
                "links": unique_links(landed.get(key, []) + problem_links.get(key, [])),
            }
        )
    not_completed = sum(n for s, n in by_status.items() if s != st.SYNC_COMPLETED)
    return resources, len(all_resources), not_completed
