"""What `status` needs of the plan memo's meta, as plain JSON beside its pickle.

The pickle (`disk.MemoMeta`) holds the pydantic settings and elements: reading
it imports pydantic and builds every model class (~0.2 s of a 0.7 s status at
100,000 users). A status in sync needs a handful of plain values of it, so
`save_meta` writes them here too. The reader checks every field's type: a
summary that is torn, of another shape or from another pickle is None, and
the caller reads the pickle (`summary_of(load_meta())`), as before.

Keyed, not just digested. The pickle is unpickled, which runs what it says,
and the summary decides what `status` reports: a sha-256 beside them ties
them against accidents only, since whoever writes one can write the other
and the digest. Both are sealed with an HMAC under a key derived from the
state directory's key (`secrets.local_key`, 0600): the pickle file starts
with the HMAC of its content (checked before unpickling, `unseal`), and the
summary carries that HMAC and one of its own. So one who can write memo/ but
cannot read the key makes nothing of theirs believed or run: refused, the
slow path is taken (the pickle, else a full derivation). One who can read
the key or replace it (owns the state directory) is provgit's own user: the
state directory is trusted local state, as its journal is. A rollback to an
earlier memo, sealed by us, stays possible: its inputs digest then says
whether it still applies.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from provgit.fsutil import atomic_write, open_state_file, read_state_file

if TYPE_CHECKING:
    from provgit.incremental.disk import MemoInputs, MemoMeta

SUMMARY_FORMAT = "memo-summary-2"
MAC_BYTES = 32  # HMAC-SHA256
# Domain separation: the state directory's key also signs plans.
_MEMO_KEY = b"provgit plan memo key v1"
_PICKLE = b"provgit plan memo pickle v1\0"
_SUMMARY = b"provgit plan memo summary v1\0"


def memo_key(state_key: bytes) -> bytes:
    """The memo's own key, derived from the state directory's key."""
    return hmac.digest(state_key, _MEMO_KEY, "sha256")


def seal(key: bytes, pickled: bytes) -> bytes:
    """The pickle file's bytes: the HMAC of `pickled`, then `pickled`."""
    return hmac.digest(key, _PICKLE + pickled, "sha256") + pickled


def unseal(key: bytes | None, sealed: bytes) -> bytes | None:
    """The pickle in `sealed` when its HMAC holds under `key`, else None."""
    if key is None or len(sealed) <= MAC_BYTES:
        return None
    mac, pickled = sealed[:MAC_BYTES], sealed[MAC_BYTES:]
    expected = hmac.digest(key, _PICKLE + pickled, "sha256")
    return pickled if hmac.compare_digest(mac, expected) else None


def _summary_mac(key: bytes, doc: dict[str, Any]) -> str:
    body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    return hmac.new(key, _SUMMARY + body, "sha256").hexdigest()


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


def write_summary(path: Path, meta: MemoMeta, sealed: bytes, key: bytes) -> None:
    """The summary of `meta`, whose pickle file holds `sealed` (`seal`)."""
    s = summary_of(meta)
    doc: dict[str, Any] = {
        "format": SUMMARY_FORMAT,
        "pickle_hmac": sealed[:MAC_BYTES].hex(),
        "digest": s.digest,
        "reads": s.inputs.reads,
        "secret_refs": list(s.inputs.secret_refs),
        "references": s.references,
        "network": s.network,
        "markdown_max_bytes": s.markdown_max_bytes,
        "secret_key": s.secret_key,
        "elements": {n: [e.type, e.reach_through, e.read_only] for n, e in s.elements.items()},
    }
    doc["hmac"] = _summary_mac(key, doc)
    atomic_write(path, orjson.dumps(doc))


def read_summary(path: Path, pickle_path: Path, key: bytes | None) -> MemoSummary | None:
    """The summary at `path` when it is well formed, sealed with `key` and
    taken from the pickle now at `pickle_path`, else None."""
    if key is None:
        return None
    try:
        doc = orjson.loads(read_state_file(path))
        with open_state_file(pickle_path) as f:
            pickle_mac = f.read(MAC_BYTES)  # the pickle's own HMAC: enough to tie them
    except (OSError, orjson.JSONDecodeError):
        return None
    try:
        if not isinstance(doc, dict) or not isinstance(given := doc.pop("hmac", None), str):
            return None
        if not hmac.compare_digest(given, _summary_mac(key, doc)):
            return None
        return _checked(doc, pickle_mac.hex())
    except (TypeError, ValueError, KeyError):
        return None


def _checked(doc: Any, pickle_mac: str) -> MemoSummary | None:
    if not isinstance(doc, dict) or doc.get("format") != SUMMARY_FORMAT:
        return None
    if doc["pickle_hmac"] != pickle_mac:
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
