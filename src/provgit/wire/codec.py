"""The element API v1 on the wire: status codes, error bodies, JSON shapes.

Shared by the simulator server (and its store's JSON columns) and the http
driver so both ends agree on one table; the OpenAPI document
(`provgit/openapi/element-api-v1.yaml`) is the written contract and the tests
hold the server to it.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import orjson

from provgit.wire.protocol import (
    Change,
    ConflictError,
    ElementError,
    FeedTooOldError,
    FencedError,
    LockedError,
    NotFoundError,
    OfflineError,
    Refusal,
    RefusedError,
    StoredRecord,
    TransportError,
    UnauthorizedError,
    WriteOp,
)

API_PREFIX = "/v1"

# orjson: a 9 KB batch encodes in ~5 us instead of ~60 (measured), on both ends
# of every request. Non-str keys as strings, like the json module does.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as the json module writes it with
    separators=(",", ":") and ensure_ascii=False."""
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        # What orjson does not take (an integer over 64 bits, say) still goes.
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | str) -> Any:
    """Parse JSON; ValueError (json.JSONDecodeError) when it is not valid."""
    return orjson.loads(data)


# Error code in the JSON body -> exception class. `bad_request`,
# `precondition_required` and `injected` (simulated 500) have no class of their
# own: a client sending them is a bug, and a 500 is a transport problem.
ERROR_CLASSES: dict[str, type[ElementError]] = {
    "refused": RefusedError,
    "conflict": ConflictError,
    "not_found": NotFoundError,
    "locked": LockedError,
    "offline": OfflineError,
    "unauthorized": UnauthorizedError,
    "feed_too_old": FeedTooOldError,
    "fenced": FencedError,
    "transport": TransportError,
}

STATUS_CLASSES: dict[int, type[ElementError]] = {
    401: UnauthorizedError,
    404: NotFoundError,
    409: ConflictError,
    410: FeedTooOldError,
    412: ConflictError,
    422: RefusedError,
    423: LockedError,
    503: OfflineError,
}


def status_for(error: ElementError, *, if_match: bool = False) -> int:
    """HTTP status for an element error. A stale If-Match is 412; a create of
    an existing record (If-None-Match: *) is 409."""
    if isinstance(error, ConflictError):
        return 412 if if_match else 409
    if isinstance(error, FencedError):
        return 409
    for status, cls in STATUS_CLASSES.items():
        if type(error) is cls:
            return status
    return 500


# An element's message is kept to this many characters: it is journaled, and
# shown in every status, report and CI log.
MESSAGE_MAX = 2000
CUT = "…"  # ends a message cut at MESSAGE_MAX


def element_text(value: Any) -> str:
    """Text an element sent (a message, a refusal's reason) as one bounded
    line, control and invisible characters shown as U+XXXX: it reaches the
    admin's terminal, and an escape sequence there can clear the screen,
    retitle the window, write the clipboard or print a fake "Sync Completed"."""
    text = "" if value is None else str(value)
    if len(text) > MESSAGE_MAX:
        text = text[: MESSAGE_MAX - 1] + CUT
    if text.isprintable():
        return text
    return "".join(
        f"<U+{ord(c):04X}>" if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") else c
        for c in text
    )


def error_from_json(body: Any, status: int | None = None) -> ElementError:
    """Rebuild the element's error from a JSON error body (or just its status)."""
    if not isinstance(body, dict):
        body = {}
    code = body.get("code")
    message = element_text(body.get("message") or f"element answered HTTP {status}")
    cls = ERROR_CLASSES.get(str(code)) if code else None
    if cls is None:
        cls = STATUS_CLASSES.get(status or 0, TransportError)
    if cls is RefusedError:
        refusals = [
            Refusal(
                element_text(r.get("form", "")),
                None if r.get("field") is None else element_text(r.get("field")),
                element_text(r.get("reason", "")),
            )
            for r in body.get("refusals") or []
            if isinstance(r, dict)
        ]
        return RefusedError(message, refusals)
    return cls(message)


def revision_of(value: Any) -> int:
    """A revision an element answered: an integer 0..MAX_REVISION (12.0 is 12,
    as for `if_revision`); TypeError for anything else. A string or a float
    stopped a run with a traceback (compared with an int), and one past 63
    bits stopped every run at the journal (SQLite's INTEGER): such an answer
    is not the element API's."""
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or not 0 <= value <= MAX_REVISION:
        raise TypeError(f"not a revision: {str(value)[:40]!r}")
    return value


def record_from_json(item: dict[str, Any]) -> StoredRecord:
    r = item["revision"]
    if type(r) is not int or not 0 <= r <= MAX_REVISION:  # the check inline: per record
        r = revision_of(r)
    return StoredRecord(item["collection"], item["key"], item["fields"], r)


def change_from_json(item: dict[str, Any]) -> Change:
    r, rr = item["revision"], item["record_revision"]
    if type(r) is not int or not 0 <= r <= MAX_REVISION:
        r = revision_of(r)
    if type(rr) is not int or not 0 <= rr <= MAX_REVISION:
        rr = revision_of(rr)
    return Change(r, item["collection"], item["key"], item["op"], item.get("fields"), rr)


def change_to_json(change: Change) -> dict[str, Any]:
    return {
        "revision": change.revision,
        "collection": change.collection,
        "key": change.key,
        "op": change.op,
        "fields": change.fields,
        "record_revision": change.record_revision,
    }


def op_to_json(op: WriteOp) -> dict[str, Any]:
    out: dict[str, Any] = {"op": op.op, "collection": op.collection, "key": op.key}
    if op.op == "put":
        out["fields"] = op.fields
    out["if_revision"] = op.if_revision
    return out


def op_from_json(item: Any) -> WriteOp:
    """A batch operation; raises ValueError with a clear message if malformed."""
    if not isinstance(item, dict):
        raise ValueError("each operation must be an object")
    op = item.get("op")
    if op not in ("put", "delete"):
        raise ValueError("op must be 'put' or 'delete'")
    collection, key = item.get("collection"), item.get("key")
    if not isinstance(collection, str) or not isinstance(key, str) or not key:
        raise ValueError("collection and key must be non-empty strings")
    fields = item.get("fields")
    if op == "put" and not isinstance(fields, dict):
        raise ValueError("a put needs 'fields', an object")
    return WriteOp(op, collection, key, fields if op == "put" else None, _revision(item))


# The largest revision an element can hold (SQLite's INTEGER).
MAX_REVISION = 2**63 - 1


def _revision(item: dict[str, Any]) -> int | None:
    """`if_revision`: null, or an integer 0..MAX_REVISION. JSON has one number
    type, so 3.0 is the integer 3 (as JSON Schema's `integer` says); a boolean
    is not a number."""
    value = item.get("if_revision")
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if type(value) is not int or not 0 <= value <= MAX_REVISION:
        raise ValueError(f"if_revision must be null or an integer from 0 to {MAX_REVISION}")
    return value
