"""The CLI's memo after a config change: what each config file defines and
which records each resource became, so a change re-projects and re-plans only
the resources it reaches (`projection.reach`), not the whole network.

Kept beside the plan memo (`memo/owners.marshal`), written by every full plan
and brought up to date by every plan that takes this path. Its digest is the
plan memo's: an owners file of another plan is not used.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provgit.fsutil import atomic_write, read_state_file
from provgit.load.cache import ParseCache
from provgit.model.state import DesiredState
from provgit.projection.project import COLLECTION_KIND, RecordRef, Target
from provgit.source import ConfigSource

FORMAT = "owners-3"

Resource = tuple[str, str]  # (kind, key)
# (kind, key, where in the file's parsed documents: document, kind, index)
Defined = tuple[str, str, tuple[Any, ...]]
# (kind, key) -> the records it became: (element, collection, key)
Records = dict[Resource, list[tuple[str, str, str]]]
# A user as a plan that does not project it reads it: key, template, role,
# host, the secret references its projection fingerprints (`shared_view`).
UserEdge = tuple[str, str | None, str | None, str, list[str]]


@dataclass
class Owners:
    digest: str
    files: dict[str, str]  # config file path -> blob id
    defines: dict[str, list[Defined]]  # config file path -> what it defines, and where
    records: Records
    users: dict[str, list[UserEdge]]  # config file path -> its users' edges


def load(directory: Path) -> Owners | None:
    try:
        doc = marshal.loads(read_state_file(directory / "owners.marshal"))
        if doc["format"] != FORMAT:
            return None
        # As `save` wrote them: marshal keeps tuples and lists apart, so the
        # 100,000 users' edges need no copy (a third of the load).
        parts = doc["files"], doc["defines"], doc["records"], doc["users"]
        if not all(isinstance(part, dict) for part in parts):
            return None
        return Owners(doc["digest"], *parts)
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        return None


def save(directory: Path, owners: Owners) -> None:
    doc = {
        "format": FORMAT,
        "digest": owners.digest,
        "files": owners.files,
        "defines": owners.defines,
        "records": owners.records,
        "users": owners.users,
    }
    atomic_write(directory / "owners.marshal", marshal.dumps(doc))


def forget(directory: Path) -> None:
    (directory / "owners.marshal").unlink(missing_ok=True)


def records_of(target: Target) -> Records:
    """Each resource's records in `target`."""
    out: Records = {}
    for element, collections in target.records.items():
        origin = target.origin.get(element, {})
        for coll, recs in collections.items():
            kind_of = COLLECTION_KIND.get(coll, coll)
            for key in recs:
                res = origin.get((coll, key)) or (kind_of, key)
                found = out.get(res)
                if found is None:
                    found = out[res] = []
                found.append((element, coll, key))
    return out


def defines_of(state: DesiredState) -> dict[str, list[Defined]]:
    out: dict[str, list[Defined]] = {}
    for (kind, key), pointer in state.origins.items():
        out.setdefault(pointer.file, []).append((kind, key, tuple(pointer.path)))
    return out


def owners_of(
    target: Target,
    defines: dict[str, list[Defined]],
    users: dict[str, list[UserEdge]],
    source: ConfigSource,
    digest: str,
    records: Records | None = None,
) -> Owners:
    """`records`: `records_of(target)` when the caller has it already."""
    files = {f.path: f.blob_id for f in source.files}
    return Owners(digest, files, defines, records_of(target) if records is None else records, users)


def changed_files(owners: Owners, source: ConfigSource) -> set[str]:
    now = {f.path: f.blob_id for f in source.files}
    return {p for p in owners.files.keys() | now.keys() if owners.files.get(p) != now.get(p)}


def item_at(docs: list[Any] | None, path: tuple[Any, ...]) -> Any:
    """The parsed item a resource was built from (None: not found)."""
    try:
        di, kind_name, i = path
        return docs[di][kind_name][i] if docs is not None else None
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def changed_resources(
    owners: Owners,
    now_defined: dict[str, list[Defined]],
    source: ConfigSource,
    parsed: ParseCache,
) -> dict[str, set[str]]:
    """kind -> keys whose record, in the changed files, is not what it was:
    added, removed, or parsed to another item (a model is built from its item
    alone, `model.build`). A file the parse cache no longer holds counts as
    changed throughout."""
    out: dict[str, set[str]] = {}
    blobs = {f.path: f.blob_id for f in source.files}
    for path in changed_files(owners, source):
        old_docs = parsed.get(owners.files[path]) if path in owners.files else None
        new_docs = parsed.get(blobs[path]) if path in blobs else None
        before = {(k, key): p for k, key, p in owners.defines.get(path, ())}
        after = {(k, key): p for k, key, p in now_defined.get(path, ())}
        for resource in before.keys() | after.keys():
            old = item_at(old_docs, before[resource]) if resource in before else None
            new = item_at(new_docs, after[resource]) if resource in after else None
            if old is None or new is None or old != new:
                out.setdefault(resource[0], set()).add(resource[1])
    return out


def old_refs(owners: Owners, reached: Mapping[str, set[str]]) -> dict[str, set[RecordRef]]:
    """element -> the records the reached resources had."""
    out: dict[str, set[RecordRef]] = {}
    for kind, keys in reached.items():
        for key in keys:
            for element, coll, rkey in owners.records.get((kind, key), ()):
                out.setdefault(element, set()).add((coll, rkey))
    return out


def same_records(owners: Owners, resources: Iterable[Resource], now: Records) -> bool:
    """Whether each of `resources` and each resource of `now` (`records_of`
    a partial target) has the records it had, in the same order: then where
    each lands (`incremental.landing`, derived from them) is as it was."""
    was = owners.records.get
    return all(was(r) == now.get(r) for r in resources) and all(
        was(r) == found for r, found in now.items()
    )


def moved_on(
    owners: Owners,
    reached: Mapping[str, set[str]],
    partial: Records,
    defines: dict[str, list[Defined]],
    users: dict[str, list[UserEdge]],
    source: ConfigSource,
    digest: str,
) -> Owners:
    """`owners` after the reached resources were projected again into a
    partial target (`partial`: its `records_of`)."""
    records = dict(owners.records)
    for kind, keys in reached.items():
        for key in keys:
            records.pop((kind, key), None)
    records.update(partial)
    files = {f.path: f.blob_id for f in source.files}
    return Owners(digest, files, defines, records, users)
