"""Read-only elements in the status (`read_only: true`): observed, never written.

Nothing lands on such an element, so it is no landing of any resource: it
counts in no `completed/total`, it never holds back `in_sync`, and its row says
`Read only: observed, not written by provgit` rather than `Sync Completed` (a
word that would claim provgit finished writing there). What the element holds
is still worth knowing (a MiCollab that IDS fills from a directory provgit
writes, or a directory provgit only reads): how it differs from what the
config would put there is listed here as information, from its last reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provgit.model.state import DesiredState
from provgit.observe import ObservationCache
from provgit.projection.project import read_only_records
from provgit.records import Fields
from provgit.report.element_facts import ElementFacts, _load_cached
from provgit.secrets import Fingerprinter

Document = dict[str, Any]


def read_only_entries(
    state: DesiredState,
    facts: Mapping[str, ElementFacts],
    state_dir: Path,
    bound: int,
) -> dict[str, Document]:
    """Per read-only element that has been read: how its records compare with
    what the config would put there (at most `bound` differences listed)."""
    # Secrets compare as unresolved (equal): information only, and no secret is resolved.
    wanted_by = read_only_records(state, Fingerprinter(None, False))
    out: dict[str, Document] = {}
    for name, wanted in wanted_by.items():
        f = facts.get(name)
        if f is None or not f.readable:
            continue
        have = _records(f, state_dir)
        if have is None:
            continue
        out[name] = _compare(wanted, have, f.objects and f.ops is None, bound)
    return out


def _records(f: ElementFacts, state_dir: Path) -> Mapping[str, Mapping[str, Any]] | None:
    """The element's last reading: the facts' own, else (the last plan's memo
    stands for it) the observation cache file."""
    if f.ops is None:
        return f.records
    loaded = _load_cached(ObservationCache(state_dir), f.name)
    return loaded[1] if loaded is not None else None


def _compare(
    wanted: Mapping[tuple[str, str], tuple[Fields, tuple[str, str]]],
    have: Mapping[str, Mapping[str, Any]],
    objects: bool,
    bound: int,
) -> Document:
    # Here: read-only elements are rare, and a status without one loads no plan computation.
    from provgit.plan.compute import field_changes

    matching = 0
    differences: list[Document] = []
    for (coll, key), (fields, (kind, resource)) in sorted(wanted.items()):
        got = have.get(coll, {}).get(key)
        if got is None:
            change, names = "missing", sorted(k for k in fields if not k.startswith("_"))
        else:
            changed = field_changes(fields, got.fields if objects else got[0])
            if not changed:
                matching += 1
                continue
            change, names = "differs", sorted(changed)
        differences.append(
            {
                "collection": coll,
                "key": key,
                "kind": kind or coll,
                "resource": resource or key,
                "change": change,
                "fields": names,
            }
        )
    extra = sum(1 for c, recs in have.items() for k in recs if (c, k) not in wanted)
    return {
        "matching": matching,
        "missing": sum(1 for d in differences if d["change"] == "missing"),
        "differing": sum(1 for d in differences if d["change"] == "differs"),
        "not_in_config": extra,
        "differences": differences[:bound],
        "omitted": max(0, len(differences) - bound),
    }


def detail_of(entry: Document) -> str:
    """The element row's detail: the comparison in one line."""
    differ = entry["missing"] + entry["differing"]
    total = differ + entry["matching"]
    if not differ:
        return f"as the config says ({total} record(s)); information, not a landing"
    return (
        f"{differ} of {total} record(s) differ from the config ({entry['missing']} missing, "
        f"{entry['differing']} different); information, not a landing"
    )
