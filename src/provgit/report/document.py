"""The status document: one value every report is rendered from.

`build_document` reads the journal (and, when given, the run's result and the
desired state for element types and reach-through links) and returns a plain
JSON-ready dict in the `provgit.status/1` format described by
`schemas/status.schema.json`. Renderers (`provgit.render.status_*`)
are functions of this value; nothing here prints or writes files.

Bounded on purpose: a report lists every problem (distribution errors,
pending updates, resources not completed) in full, and completed resources
only up to `MAX_RESOURCES`, so a 100,000-user network gets a page a browser
can open.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provgit.apply.result import ApplyResult
from provgit.incremental.store import TargetStore
from provgit.journal import Journal
from provgit.model.state import DesiredState
from provgit.observe import Observation
from provgit.plan.model import ElementPlan
from provgit.projection.project import Target
from provgit.report.document_common import (
    DOWN_STATUSES,
    FORMAT,
    HELD_PREFIXES,
    MAX_EVENTS,
    MAX_RESOURCES,
    OK_STATUSES,
    Document,
    GitSource,
    Links,
    iso_now,
    ivr_service_alarm,
    status_class,
)
from provgit.report.document_derived import derived_document
from provgit.report.document_remembered import remembered_document
from provgit.report.document_views import SERVER_PAGE, filtered, worst_line

if TYPE_CHECKING:
    from provgit.incremental.memo_summary import MemoSummary

# The names renderers, publishing and the CLI read through `document`.
__all__ = [
    "DOWN_STATUSES",
    "FORMAT",
    "HELD_PREFIXES",
    "MAX_EVENTS",
    "MAX_RESOURCES",
    "OK_STATUSES",
    "SERVER_PAGE",
    "Document",
    "GitSource",
    "build_document",
    "filtered",
    "iso_now",
    "ivr_service_alarm",
    "status_class",
    "worst_line",
]


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
    summary: MemoSummary | None = None,
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
    keeps the view of the target up to date from run to run. `summary`: the
    plan memo's summary as the caller already read it from `state_dir`.
    """
    links = Links(state, result)
    sdir = state_dir if state_dir is not None else journal.path.parent
    derived_from = _derive_inputs(sdir, state, target, links, summary)
    if derived_from is not None:
        if network is None:
            network = result.network if result is not None else derived_from[2]
        return derived_document(
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
            state=state,
        )
    if network is None:
        network = (
            result.network
            if result is not None
            else state.settings.network
            if state is not None
            else None
        )
    return remembered_document(
        journal,
        links,
        network=network,
        result=result,
        git=git,
        max_events=max_events,
        max_resources=max_resources,
    )


def _derive_inputs(
    state_dir: Path,
    state: DesiredState | None,
    target: Target | None,
    links: Links,
    summary: MemoSummary | None = None,
) -> tuple[Target | TargetStore, dict[str, str], str | None, str | None] | None:
    """The target and element types to derive from: the caller's, else the
    last plan's (the memo under the state directory); and the digest of the
    target when it is the last plan's (its per-element memos then stand for
    readings of the elements)."""
    from provgit.incremental.disk import PlanMemo

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
            # Read once per status: checking its ~20,000 references is not free.
            meta = summary or memo.load_summary()
            if meta is None:
                return None
            links.add(meta.elements)
            network = meta.network
    if state is not None:
        types: dict[str, str] = {n: str(e.type) for n, e in state.elements.items()}
    elif target is not None:
        types = {n: links.types.get(n, "") for n in target.records}
    else:
        types = dict(links.types)
    found = target if target is not None else store
    assert found is not None
    return found, types, network, digest
