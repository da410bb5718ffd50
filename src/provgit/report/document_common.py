"""What both ways of building a status document share: its format, the
status classes, holds, the IVR service alarm, reach-through links, the run."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from provgit.apply import status as st
from provgit.apply.result import ApplyResult
from provgit.journal import NETWORK, Journal, Suspension
from provgit.model.state import DesiredState
from provgit.plan.moves import MOVE_PENDING
from provgit.records import form_name_of
from provgit.report import states as dv
from provgit.report.links import link_maker

FORMAT = "provgit.status/1"
MAX_EVENTS = 50
MAX_RESOURCES = 2000
# Status strings in the seeds' words, grouped for colouring and filtering.
OK_STATUSES = frozenset({st.SYNC_COMPLETED})
DOWN_STATUSES = frozenset({st.OFFLINE, st.STOPPED, st.IVR_DOWN, st.TOKEN_REFUSED})

Document = dict[str, Any]


@dataclass(frozen=True)
class GitSource:
    """Where the applied config came from in git (see `publish.notes.git_source`)."""

    commit: str
    dirty: bool
    path: str  # the config directory, relative to the repository root ("." for the root)


def iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# A suspension, a sync window or the call load holds the element's writes
# (apply/holds.py), or a move waits for its new element (plan/moves.py).
HELD_PREFIXES = ("Suspended: ", "Held by window ", "Deferred: ", MOVE_PENDING)


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


def held_text(
    name: str,
    state: str,
    row: Mapping[str, Any] | None,
    suspensions: Mapping[str, Suspension],
) -> str | None:
    """What holds an element's work, when nothing worse is wrong there: a
    suspension (from the journal, so it shows before the next run) or the
    sync window or call load the last run named. Down, drifted or failed elements keep
    those words: they need a person more than a hold does."""
    if state not in (dv.PENDING, dv.NOT_APPLIED, dv.COMPLETED):
        return None
    s = suspensions.get(name) or suspensions.get(NETWORK)
    if s is not None:
        return s.describe()
    last = row["status"] if row is not None else ""
    if state != dv.COMPLETED and last.startswith(HELD_PREFIXES[1:]):
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


def safe_url(url: str | None) -> str | None:
    # Templates come from the config; only web links are ever rendered, so a
    # `javascript:` template cannot turn a report into a script.
    if url and url.lower().startswith(("https://", "http://")):
        return url
    return None


class Links:
    """Reach-through links from element templates (none without a desired state)."""

    def __init__(self, state: DesiredState | None, result: ApplyResult | None) -> None:
        self.templates: dict[str, str | None] = {}
        self.types: dict[str, str] = {}
        self._forms: dict[tuple[str, str], str] = {}
        # Per element, form and collection: the template parsed once (`link_maker`).
        self._makers: dict[tuple[str, str, str], Callable[[str], str | None]] = {}
        if result is not None:
            self.types.update({e.element: e.element_type for e in result.elements})
        if state is not None:
            self.add(state.elements)

    def add(self, elements: Mapping[str, Any]) -> None:
        self._forms.clear()
        self._makers.clear()
        for name, el in elements.items():
            self.templates[name] = el.reach_through
            self.types[name] = el.type

    def form(self, element: str, collection: str) -> str:
        # Asked once per listed record (thousands), answered per element and collection.
        found = self._forms.get((element, collection))
        if found is None:
            found = self._forms[(element, collection)] = form_name_of(
                collection, self.types.get(element)
            )
        return found

    def url(self, element: str, form: str, collection: str, key: str) -> str | None:
        made = self._makers.get((element, form, collection))
        if made is None:
            template = self.templates.get(element)
            made = self._makers[(element, form, collection)] = link_maker(
                template, element, form, collection
            )
        return safe_url(made(key))

    def link(self, element: str, collection: str, key: str, form: str | None = None) -> Document:
        form = form or self.form(element, collection)
        return {
            "element": element,
            "form": form,
            "collection": collection,
            "key": key,
            "url": self.url(element, form, collection, key),
        }


def run_entry(journal: Journal, result: ApplyResult | None) -> Document | None:
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
        "started": iso_time(last["started"]),
        "finished": iso_time(last["finished"]),
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


def iso_time(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
