"""The content digest of an element: cheap detection of a lying change feed.

An order-independent digest of every record an element holds, kept by the
element as it writes (one hash per written record) and by provgit's copy of
it as the feed is applied. Equal revisions with unequal digests mean the
element holds something its feed never said: a full read is due at once.

The digest is the sum, modulo 2**64, of a 64-bit hash of each record: its
collection, key and fields as provgit compares them (the element's own `_`
bookkeeping left out, the ownership mark kept), canonical JSON with sorted
keys. A sum can be updated per record, in any order. Sent as 16 hex digits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from provgit.records import MANAGED_BY

MODULUS = 2**64
# An empty 8-byte BLAKE2b: a copy of it hashes a record in less than half the
# time of a new one (the constructor parses its keyword arguments each time).
_BLAKE8 = hashlib.blake2b(digest_size=8)


def record_hash(
    collection: str, key: str, fields: dict[str, Any] | None, *, own: bool = False
) -> int:
    """The record's share of the digest (0 for an absent record). `own`: the
    fields hold no `_` bookkeeping already (provgit's normalised copy)."""
    if fields is None:
        return 0
    if not own:
        fields = {k: v for k, v in fields.items() if k[:1] != "_" or k == MANAGED_BY}
    h = _BLAKE8.copy()
    h.update(orjson.dumps([collection, key, fields], option=orjson.OPT_SORT_KEYS))
    return int.from_bytes(h.digest(), "little")


def moved(
    digest: int,
    collection: str,
    key: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    *,
    own: bool = False,
) -> int:
    """`digest` after the record went from `old` to `new` (None: absent)."""
    gone = record_hash(collection, key, old, own=own)
    return (digest - gone + record_hash(collection, key, new, own=own)) % MODULUS


def digest_of(records: Iterable[tuple[str, str, dict[str, Any]]], *, own: bool = False) -> int:
    return sum(record_hash(c, k, f, own=own) for c, k, f in records) % MODULUS


def to_text(digest: int) -> str:
    return f"{digest:016x}"


def from_text(text: object) -> int | None:
    """The digest an element sent (None: it sends none, or not one we can read)."""
    if not isinstance(text, str) or len(text) != 16:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None
