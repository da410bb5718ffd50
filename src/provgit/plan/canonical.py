"""The canonical serialization of a plan (what is signed and checksummed),
and the error of a plan file that does not parse as one."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson


class PlanFormatError(Exception):
    """A saved plan file that is not a provgit plan, or was edited."""


def canonical(doc: Any) -> bytes:
    """The one serialization of a JSON value that is signed and checksummed:
    sorted keys, no spaces, UTF-8 (parse it and serialize again: same bytes).
    orjson: the plan is serialized once, in this form, and that is the file."""
    try:
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        # A dict with non-string keys (json.dumps wrote them as strings): the
        # same bytes its parsed-back copy gives. Slower, so not the first try.
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def legacy_canonical(doc: Any) -> bytes:
    """`canonical` before plans were written with orjson (ASCII escapes): only
    to check plans saved by an older provgit."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def join_sorted(parts: Mapping[str, Iterable[bytes]]) -> Iterator[bytes]:
    """The pieces of `canonical` of a dict whose values come as pieces of
    their canonical bytes (what `canonical` of the whole dict would give,
    without serializing any value twice or holding it whole)."""
    yield b"{"
    for i, k in enumerate(sorted(parts)):
        yield (b"," if i else b"") + orjson.dumps(k) + b":"
        yield from parts[k]
    yield b"}"
