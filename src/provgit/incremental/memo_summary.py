"""What `status` needs of the plan memo's meta, as plain JSON beside its pickle.

The pickle (`disk.MemoMeta`) holds the pydantic settings and elements: reading
it imports pydantic and builds every model class (~0.2 s of a 0.7 s status at
100,000 users). A status in sync needs a handful of plain values of it, so
`save_meta` writes them here too, with the sha-256 of the pickle they were
taken from. The reader checks every field's type and that digest: a summary
that is torn, hand-edited, from another pickle or of another shape is None,
and the caller reads the pickle (`summary_of(load_meta())`), as before.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from provgit.fsutil import atomic_write

if TYPE_CHECKING:
    from provgit.incremental.disk import MemoInputs, MemoMeta

SUMMARY_FORMAT = "memo-summary-1"


@dataclass(frozen=True)
class ElementSummary:
    """An element as the status report links it (`report.document_common.Links`)."""

    type: str
    reach_through: str | None
    read_only: bool


@dataclass(frozen=True)
class MemoSummary:
    digest: str
    inputs: MemoInputs
    references: str | None
    network: str
    markdown_max_bytes: int
    secret_key: str | None  # `SecretRef.describe()` of settings.secret_key
    elements: dict[str, ElementSummary]


def summary_of(meta: MemoMeta) -> MemoSummary:
    settings = meta.settings
    key = settings.secret_key
    return MemoSummary(
        meta.digest,
        meta.inputs,
        meta.references,
        settings.network,
        settings.reports.markdown_max_bytes,
        key.describe() if key is not None else None,
        {
            n: ElementSummary(str(e.type), e.reach_through, e.read_only)
            for n, e in meta.elements.items()
        },
    )


def write_summary(path: Path, meta: MemoMeta, pickled: bytes) -> None:
    s = summary_of(meta)
    doc = {
        "format": SUMMARY_FORMAT,
        "pickle_sha256": hashlib.sha256(pickled).hexdigest(),
        "digest": s.digest,
        "reads": s.inputs.reads,
        "secret_refs": list(s.inputs.secret_refs),
        "references": s.references,
        "network": s.network,
        "markdown_max_bytes": s.markdown_max_bytes,
        "secret_key": s.secret_key,
        "elements": {n: [e.type, e.reach_through, e.read_only] for n, e in s.elements.items()},
    }
    atomic_write(path, orjson.dumps(doc))


def read_summary(path: Path, pickle_path: Path) -> MemoSummary | None:
    """The summary at `path` when it is well formed and taken from the pickle
    now at `pickle_path`, else None."""
    try:
        doc = orjson.loads(path.read_bytes())
        pickled = pickle_path.read_bytes()
    except (OSError, orjson.JSONDecodeError):
        return None
    try:
        return _checked(doc, hashlib.sha256(pickled).hexdigest())
    except (TypeError, ValueError, KeyError):
        return None


def _checked(doc: Any, pickle_sha: str) -> MemoSummary | None:
    if not isinstance(doc, dict) or doc.get("format") != SUMMARY_FORMAT:
        return None
    if doc["pickle_sha256"] != pickle_sha:
        return None
    reads, refs, elements = doc["reads"], doc["secret_refs"], doc["elements"]
    fields = (
        _is(doc["digest"], str)
        and _is(doc["network"], str)
        and _is(doc["references"], str, None)
        and _is(doc["secret_key"], str, None)
        and type(doc["markdown_max_bytes"]) is int
        and isinstance(reads, dict)
        # Inline, not `_is`: ~20,000 secret references at 100,000 users, and a
        # call per value was most of reading the summary.
        and all(v is None or type(v) is str for v in reads.values())
        and isinstance(refs, list)
        and all(type(r) is str for r in refs)
        and isinstance(elements, dict)
        and all(_element_ok(e) for e in elements.values())
    )
    if not fields:
        return None
    from provgit.incremental.disk import MemoInputs

    return MemoSummary(
        doc["digest"],
        MemoInputs(dict(reads), tuple(refs)),
        doc["references"],
        doc["network"],
        doc["markdown_max_bytes"],
        doc["secret_key"],
        {n: ElementSummary(*e) for n, e in elements.items()},
    )


def _is(value: Any, *types: type | None) -> bool:
    return any(value is None if t is None else type(value) is t for t in types)


def _element_ok(e: Any) -> bool:
    return (
        isinstance(e, list)
        and len(e) == 3
        and _is(e[0], str)
        and _is(e[1], str, None)
        and type(e[2]) is bool
    )
