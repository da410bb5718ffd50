"""Incremental planning: the last plan per element, refreshed through the change feed.

A full plan projects the whole network and compares every record of every
element: for 100,000 users that is ~300,000 records, seconds of work that
mostly re-proves "unchanged". The result only depends on

- the inputs of the projection: the config files (git blob ids), the prompt
  audio the projection read, the fingerprints of the secrets it used, provgit's
  code (see `validate.cache.code_fingerprint`) and the planning options; and
- what each element holds, which only changes through writes its change feed
  lists.

So after each full plan provgit keeps, per element, the element revision it
saw, the operations it planned, and the keys it observed, plus the projected
target on disk (`target.store`). While the inputs digest is the same, the next
plan reads each element's feed since that revision and re-plans exactly the
records the feed names (`compute.plan_record`), reusing the rest. The result
equals the full computation (a property test holds it to that); anything
unexpected (feed too old, a missing memo, an element that cannot be read)
falls back to the full path. `PROVGIT_NO_MEMO=1` turns it off.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provgit.fsutil import atomic_write
from provgit.model.network import Element
from provgit.model.settings import Settings
from provgit.observe import Observation
from provgit.plan.compute import PlanOptions, assemble, plan_record, read_only_plan
from provgit.plan.model import ElementPlan, Operation
from provgit.projection import Target
from provgit.secrets import UNRESOLVED, Fingerprinter, parse_ref
from provgit.source import ConfigSource, blob_id
from provgit.validate.cache import Reads, tree_key
from provgit.wire.protocol import StoredRecord

FORMAT = "plan-memo-2"  # 2: delete operations say whether provgit created the record


def enabled() -> bool:
    return os.environ.get("PROVGIT_NO_MEMO", "") in ("", "0")


@dataclass(frozen=True)
class MemoInputs:
    """What the projection depended on besides the config files themselves."""

    reads: Reads  # prompt audio: path -> blob id (None: absent)
    secret_refs: tuple[str, ...]


@dataclass(frozen=True)
class MemoMeta:
    digest: str
    inputs: MemoInputs
    settings: Settings
    elements: dict[str, Element]


@dataclass(frozen=True)
class ElementMemo:
    digest: str
    revision: int
    operations: tuple[Operation, ...]
    warnings: dict[str, str]  # "collection/key" -> warning
    keys: dict[str, list[str]]  # collection -> keys observed on the element


def inputs_digest(
    source: ConfigSource,
    inputs: MemoInputs,
    fingerprints: Fingerprinter,
    options: PlanOptions,
) -> tuple[str, list[str]]:
    """The digest of everything a plan depends on but the elements, and the
    secret references that cannot be resolved here."""
    h = hashlib.sha256(f"{FORMAT}\0{tree_key(source)}".encode())
    for rel in sorted(inputs.reads):
        data = source.read_other(rel)
        h.update(f"\0audio:{rel}:{None if data is None else blob_id(data)}".encode())
    unresolved = []
    for described in sorted(inputs.secret_refs):
        fp = fingerprints.field(parse_ref(described))["$sensitive"]
        if fp == UNRESOLVED:
            unresolved.append(described)
        h.update(f"\0secret:{described}:{fp}".encode())
    h.update(f"\0prune:{options.prune}".encode())
    return h.hexdigest(), unresolved


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class PlanMemo:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(state_dir) / "memo"

    @property
    def target_path(self) -> Path:
        return self.dir / "target.sqlite"

    def load_meta(self) -> MemoMeta | None:
        try:
            meta = pickle.loads((self.dir / "meta.pickle").read_bytes())
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError):
            return None
        return meta if isinstance(meta, MemoMeta) else None

    def save_meta(self, meta: MemoMeta) -> None:
        # Our own file, read only by us: pickle keeps the pydantic settings and elements.
        atomic_write(self.dir / "meta.pickle", pickle.dumps(meta))

    def load_element(self, element: str) -> ElementMemo | None:
        try:
            doc: dict[str, Any] = marshal.loads(
                (self.dir / "elements" / f"{_safe(element)}.marshal").read_bytes()
            )
            if doc["format"] != FORMAT or doc["element"] != element:
                return None
            return ElementMemo(
                doc["digest"],
                doc["revision"],
                tuple(Operation.from_json(o) for o in doc["operations"]),
                dict(doc["warnings"]),
                {c: list(k) for c, k in doc["keys"].items()},
            )
        except (OSError, EOFError, ValueError, TypeError, KeyError):
            return None

    def save_element(self, element: str, memo: ElementMemo) -> None:
        doc = {
            "format": FORMAT,
            "element": element,
            "digest": memo.digest,
            "revision": memo.revision,
            "operations": [op.to_json() for op in memo.operations],
            "warnings": memo.warnings,
            "keys": memo.keys,
        }
        atomic_write(self.dir / "elements" / f"{_safe(element)}.marshal", marshal.dumps(doc))

    def forget_element(self, element: str) -> None:
        (self.dir / "elements" / f"{_safe(element)}.marshal").unlink(missing_ok=True)


def memo_of(plan: ElementPlan, digest: str, keys: dict[str, list[str]]) -> ElementMemo:
    warnings = {}
    for w in plan.warnings:
        ref = w.split(" ", 1)[0]
        warnings[ref] = w
    assert plan.observed_revision is not None
    return ElementMemo(digest, plan.observed_revision, plan.operations, warnings, keys)


def refresh(
    entry: ElementMemo,
    latest: dict[tuple[str, str], StoredRecord | None],
    partial: Target,
    observed: Observation,
    element_type: str,
    settings: Settings,
    options: PlanOptions,
) -> tuple[ElementPlan, ElementMemo]:
    """The element's plan from its memo and what its feed named since (`latest`:
    record or None for deleted), with `partial` holding the desired records of
    just those keys; and the memo to keep for next time."""
    name = observed.element
    assert observed.revision is not None
    ops = {(op.collection, op.key): op for op in entry.operations}
    warnings = dict(entry.warnings)
    keys = {c: set(k) for c, k in entry.keys.items()}
    desired = partial.records.get(name, {})
    for (coll, key), stored in latest.items():
        ops.pop((coll, key), None)
        warnings.pop(f"{coll}/{key}", None)
        have = keys.setdefault(coll, set())
        if stored is None:
            have.discard(key)
        else:
            have.add(key)
        if name in partial.read_only:
            continue
        found = plan_record(
            coll, key, desired.get(coll, {}).get(key), stored, partial, name, settings, options
        )
        if isinstance(found, Operation):
            ops[(coll, key)] = found
        elif found is not None:
            warnings[f"{coll}/{key}"] = found
    count = sum(len(k) for k in keys.values())
    if name in partial.read_only:
        element_plan = read_only_plan(name, element_type, observed, count)
    else:
        element_plan = assemble(
            name,
            element_type,
            observed,
            list(ops.values()),
            list(warnings.values()),
            count,
            settings,
            options,
        )
    kept = ElementMemo(
        entry.digest,
        observed.revision,
        element_plan.operations,
        warnings,
        {c: list(k) for c, k in keys.items()},
    )
    return element_plan, kept
