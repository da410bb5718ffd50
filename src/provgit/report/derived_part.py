"""The part of the status document that depends on the derivation alone, and
its reuse from one report to the next when what it was derived from is the same.

A status in sync at 100,000 users lists 2,000 resources, each with its
elements and reach-through links: deriving and listing them was about half of
the report after a reconcile with nothing to do. When nothing that feeds the
derivation changed (the stored target, by its digest; each element's state,
revision and planned operations; the reach-through templates and element
types; and no pending update, distribution error, provgit write after the
reading, or drift proposal in the journal), the part is what the last report
derived: it is read back instead of derived again.

Reused only when every element read is planned with nothing to do (or is
down): the derivation then reads nothing of the journal beyond the facts the
key names (`derive._settle_differing`, which reads provgit's past writes, runs
for differing records only). The file is sealed with the memo's key
(`memo_summary.memo_key`): one who cannot read the state directory's key
cannot make a report say "Sync Completed".
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import marshal
from collections.abc import Mapping
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from provgit.fsutil import read_state_file
from provgit.plan.swap_mark import Parked
from provgit.projection.project import COLLECTION_KIND
from provgit.report import derive as dv
from provgit.report.document_common import Document, Links
from provgit.report.leftovers import Said

# Bumped when what the part holds, or how it is derived, changes.
PART_FORMAT = 1
_DOMAIN = b"provgit report derived part v1\0"
_MAC_BYTES = 32
FILE_NAME = "report-part.marshal"


@dataclass
class DerivedPart:
    """What the document takes from the derivation (plain values only)."""

    elements: dict[str, str]  # element -> derived state
    not_deleted: dict[str, int]  # element -> records not deleted yet
    read_only: list[str]
    in_sync: bool
    worst: str  # before distribution errors and pending updates are weighed
    by_state: dict[str, int]
    total_resources: int
    # The listed resources' entries; "run_id" and "time" are the report's own.
    resources: list[Document]
    records_not_deleted: int
    records_not_deleted_by_kind: dict[str, int]
    drift: int


def part_of(
    derived: dv.Derived,
    links: Links,
    types: Mapping[str, str],
    proposed: Mapping[tuple[str, str, str], str],
    max_resources: int,
) -> DerivedPart:
    """The document's derived part (resources listed up to `max_resources`)."""
    ordered = sorted(
        derived.resources.values(),
        key=lambda r: (r.state == dv.COMPLETED, r.kind, r.resource),
    )
    by_state: dict[str, int] = {}
    for r in ordered:
        by_state[r.state] = by_state.get(r.state, 0) + 1
    if derived.completed_extra:
        by_state[dv.COMPLETED] = by_state.get(dv.COMPLETED, 0) + derived.completed_extra
    listed = _listed_resources(derived, ordered, max_resources)
    return DerivedPart(
        elements=dict(derived.elements),
        not_deleted={n: len(v) for n, v in derived.deletes_not_applied.items()},
        read_only=sorted(derived.read_only),
        in_sync=derived.in_sync,
        worst=_worst_state(derived, ordered),
        by_state=dict(sorted(by_state.items())),
        total_resources=len(ordered) + derived.completed_extra,
        resources=_resource_entries(listed, links, types, proposed),
        records_not_deleted=sum(len(v) for v in derived.deletes_not_applied.values()),
        records_not_deleted_by_kind=_not_deleted_by_kind(derived),
        drift=sum(len(v) for v in derived.drift.values()),
    )


def reuse_key(
    memo_digest: str | None,
    types: Mapping[str, str],
    facts: Mapping[str, dv.ElementFacts],
    jf: dv.JournalFacts,
    links: Links,
    max_resources: int,
) -> bytes | None:
    """What the part is derived from, as a digest; None when the derivation
    may read more than this names (then it is derived, never reused)."""
    if memo_digest is None:
        return None
    if jf.pending or jf.errors or jf.proposed or jf.rejected:
        return None
    if any(jf.writes_after.values()):
        return None
    for f in facts.values():
        if f.readable and f.ops != {}:
            return None  # operations planned, or only a cached reading to compare
    names = sorted(set(links.templates) | set(links.types))
    what = (
        PART_FORMAT,
        memo_digest,
        max_resources,
        sorted(types.items()),
        [(n, f.type, f.state, f.revision, f.detail, f.readable) for n, f in sorted(facts.items())],
        [(n, links.templates.get(n), links.types.get(n)) for n in names],
    )
    return hashlib.sha256(repr(what).encode()).digest()


def sealing_key(state_dir: Path) -> bytes | None:
    from provgit.incremental.memo_summary import memo_key
    from provgit.secrets import network_key

    found = network_key(None, state_dir, create=False)
    return None if found is None else memo_key(found.secret)


def load_part(state_dir: Path, key: bytes) -> DerivedPart | None:
    """The part the last report derived from the inputs `key` names, if any."""
    try:
        sealed = read_state_file(state_dir / "memo" / FILE_NAME)
    except OSError:
        return None
    mac_key = sealing_key(state_dir)
    if mac_key is None or len(sealed) <= _MAC_BYTES:
        return None
    mac, body = sealed[:_MAC_BYTES], sealed[_MAC_BYTES:]
    if not hmac.compare_digest(mac, hmac.digest(mac_key, _DOMAIN + body, "sha256")):
        return None
    try:
        stored_key, fields = marshal.loads(body)
        if stored_key != key:
            return None
        return DerivedPart(*fields)
    except (ValueError, TypeError, EOFError):
        return None


def save_part(state_dir: Path, key: bytes, part: DerivedPart) -> None:
    """Keep `part` for the next report derived from the same inputs (best effort)."""
    from provgit.fsutil import atomic_write

    mac_key = sealing_key(state_dir)
    if mac_key is None:
        return
    body = marshal.dumps((key, astuple(part)))
    sealed = hmac.digest(mac_key, _DOMAIN + body, "sha256") + body
    with contextlib.suppress(OSError):
        # Not synced: a part lost to a power cut is derived again.
        atomic_write(state_dir / "memo" / FILE_NAME, sealed, fsync=False)


def stamped(part: DerivedPart, run_id: int | None, now: str) -> list[Document]:
    """The part's resource entries, stamped with this report's run and time."""
    out = []
    for entry in part.resources:
        e = dict(entry)
        e["run_id"], e["time"] = run_id, now
        out.append(e)
    return out


def _listed_resources(
    derived: dv.Derived, ordered: list[dv.ResourceState], max_resources: int
) -> list[dv.ResourceState]:
    """The resources the document lists: problems first, then completed ones to the bound."""
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
    return listed


def _resource_entries(
    listed: list[dv.ResourceState],
    links: Links,
    types: Mapping[str, str],
    proposed: Mapping[tuple[str, str, str], str],
) -> list[Document]:
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
            if s == dv.DRIFT_PROPOSED and (el, coll, key) in proposed:
                per[el]["branch"] = proposed[(el, coll, key)]
            on = r.parked.get(el)
            if on is not None and s != dv.COMPLETED:
                per[el]["status"] = on.words()
                per[el]["spare" if isinstance(on, Parked) else "swap"] = on.to_json()
        text = _with_spares(dv.resource_text(r, types), r)
        entry: dict[str, Any] = {
            "kind": r.kind,
            "resource": r.resource,
            "status": text,
            "class": dv.status_class_of(r.state),
            "state": r.state,
            "completed": r.completed,
            "total": r.total,
            # SDS's sharing icon: the same data lands on several elements.
            "shared": r.total > 1,
            "run_id": None,  # stamped per report (`stamped`)
            "time": "",
            "links": rlinks,
            "elements": per,
        }
        resources.append(entry)
    return resources


def _with_spares(text: str, r: dv.ResourceState) -> str:
    """A resource's words, with where a number swap left it on a spare number,
    or which elements it waits for (the same words on every element they
    hold for are said once)."""
    said: dict[Said, list[str]] = {}
    for el, on in sorted(r.parked.items()):
        if r.elements.get(el, dv.COMPLETED) != dv.COMPLETED:
            said.setdefault(on, []).append(el)
    parts = [on.words(where) for on, where in said.items()]
    return "; ".join([text, *(p[0].lower() + p[1:] for p in parts)])


def _worst_state(derived: dv.Derived, ordered: list[dv.ResourceState]) -> str:
    worst = derived.worst()
    for r in ordered:
        worst = dv.worst(worst, r.state)
        if r.state != dv.COMPLETED:
            break  # sorted problems first; the elements already carry the worst
    return worst


def _not_deleted_by_kind(derived: dv.Derived) -> dict[str, int]:
    """Records still to delete, by the kind of resource they were (so that
    `status --kind users` does not answer for a removed user still there)."""
    out: dict[str, int] = {}
    for refs in derived.deletes_not_applied.values():
        for coll, _key in refs:
            kind = COLLECTION_KIND.get(coll, coll)
            out[kind] = out.get(kind, 0) + 1
    return dict(sorted(out.items()))
