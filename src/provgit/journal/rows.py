"""The journal's row types: what each table holds, as the rest of provgit sees it.

Times are seconds since the epoch in the tables and ISO 8601 (UTC) in JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

EVENT_TYPES = (
    "sync_completed",
    "sync_failed",
    "alarm_raised",
    "alarm_cleared",
    "drift",
    "drift_proposed",  # watch --drift propose: drift committed to a drift branch for review
    "drift_rejected",  # ... and that branch closed unmerged: the config wins, drift overwritten
    "refused",  # apply refused for safety (stale plan, threshold, lock, queue cap)
    "config_refused",  # the watcher refused an invalid config; the last good one stays
    "interrupted",  # a run stopped by a signal, or found dead (no finish), by the next run
    "element_down",  # an element found down (stopped, offline, token refused, ...)
    "element_up",  # an element that was down answers again
    "move_held",  # a moving record's delete held until its new element has it
    "resource_removed",  # a resource deleted from every element it was on
    "element_removed",  # an element left the config: its queued writes and errors dropped
    "removal_held",  # watch: records gone from the files wait for a confirming read
    "removal_withdrawn",  # watch: they came back before it; nothing was deleted
    "suspended",  # writes to an element (or the network) suspended by a person
    "resumed",  # a suspension lifted; the held work goes out on the next run
    "window_held",  # a sync window held a run's changes as pending updates
    "window_override",  # apply --override-window went through a closed window
    "call_load_deferred",  # IVR content changes wait for an IVR server's call load to fall
    "call_load_waited_out",  # ... and went out after apply.quiet_load's max_wait
    "hold_released",  # held work released: a window opened, the call load fell, max_wait
    "feed_missed",  # a full read found changes the element's change feed never named
)
# The element name a network-wide suspension is kept under.
NETWORK = ""


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


# orjson hands anything but plain JSON values to `default` (which refuses):
# those take the standard encoder, whose bytes the journal's digests are of.
_FAST = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
# A float outside a string (the two encoders spell some differently).
_FLOAT = re.compile(rb"[:,\[]-?[0-9]+[.eE]")


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def fields_hash(action: str, fields: Any) -> str:
    """A stable digest of what a write would put (secrets appear as fingerprints only).

    The digest is of the standard encoder's compact, key-sorted, ASCII-escaped
    JSON (journals hold such digests). orjson writes the same bytes for plain
    ASCII values without floats, DEL or null (a NaN or infinity is its null),
    ~9x faster (two digests a write: a tenth of a first rollout's apply);
    anything else takes the standard encoder.
    """
    try:
        body = orjson.dumps([action, fields], default=_refuse, option=_FAST)
    except TypeError:  # orjson.JSONEncodeError too
        body = b"\x80"  # not ASCII: the standard encoder below
    if not body.isascii() or b"\x7f" in body or b"null" in body or _FLOAT.search(body) is not None:
        text = json.dumps([action, fields], sort_keys=True, separators=(",", ":"), default=str)
        body = text.encode()
    return hashlib.sha256(body).hexdigest()[:32]


@dataclass(frozen=True)
class Suspension:
    """Writes to `element` (NETWORK: every element) held since `since`."""

    element: str
    reason: str
    who: str
    since: float

    @property
    def network(self) -> bool:
        return self.element == NETWORK

    def describe(self) -> str:
        """The status words: "Suspended: <reason> (since <time>, by <who>)"."""
        return f"Suspended: {self.reason} (since {iso(self.since)}, by {self.who})"

    def to_json(self) -> dict[str, Any]:
        return {
            "element": self.element or None,
            "reason": self.reason,
            "who": self.who,
            "since": iso(self.since),
        }


@dataclass(frozen=True)
class Intent:
    element: str
    collection: str
    key: str
    action: str
    if_revision: int | None = None
    fields_hash: str | None = None
    id: int = 0
    run_id: int = 0
    time: float = 0.0


@dataclass(frozen=True)
class PendingUpdate:
    element: str
    collection: str
    key: str
    action: str
    kind: str
    resource: str
    attempts: int
    first_failed: float
    last_attempt: float
    next_retry: float
    last_error: str

    def to_json(self) -> dict[str, Any]:
        return {
            "element": self.element,
            "collection": self.collection,
            "key": self.key,
            "action": self.action,
            "kind": self.kind,
            "resource": self.resource,
            "attempts": self.attempts,
            "first_failed": iso(self.first_failed),
            "last_attempt": iso(self.last_attempt),
            "next_retry": iso(self.next_retry),
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class DistributionError:
    """One SDS distribution error."""

    id: int  # the action id
    element: str  # destination element
    collection: str
    key: str
    form: str
    kind: str
    resource: str
    action: str  # add / modify / delete
    error_type: str
    reason: str
    status: str  # "idle" or "retry pending"
    detail: dict[str, Any]  # the first fields of the record, redacted
    fields_hash: str | None
    time: float
    last_retried: float
    attempts: int

    def to_json(self) -> dict[str, Any]:
        return {
            "action_id": self.id,
            "element": self.element,
            "time": iso(self.time),
            "last_retried": iso(self.last_retried),
            "action": self.action,
            "form": self.form,
            "collection": self.collection,
            "key": self.key,
            "kind": self.kind,
            "resource": self.resource,
            "error_type": self.error_type,
            "reason": self.reason,
            "status": self.status,
            "attempts": self.attempts,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Event:
    id: int
    time: float
    type: str
    element: str | None
    resource: str | None
    message: str
    run_id: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": iso(self.time),
            "type": self.type,
            "element": self.element,
            "resource": self.resource,
            "message": self.message,
            "run_id": self.run_id,
        }


@dataclass(frozen=True)
class LastWrite:
    """provgit's newest write to one record that may have changed it."""

    action: str  # add / modify / delete
    outcome: str | None  # "ok", "resolved" (fate unknown, settled later) or None (open)
    revision: int | None  # the record's revision it produced (ok only)


@dataclass(frozen=True)
class DriftItem:
    """One record found changed outside provgit (see `Journal.drift_items`)."""

    element: str
    collection: str
    key: str
    kind: str  # the resource it comes from
    resource: str
    change: str  # "changed", "missing" (deleted outside provgit), "unexpected" (re-created)
    fields: tuple[str, ...]  # names of the fields that differ from the config; never values
    revision: int | None  # the record's revision when last found (None: absent)
    # "open", "captured" (by `import --drift`, on the branch in `note`), or
    # "rejected" (that branch closed unmerged: the next run overwrites it)
    state: str
    note: str | None
    first_seen: float
    last_seen: float

    def to_json(self) -> dict[str, Any]:
        return {
            "element": self.element,
            "collection": self.collection,
            "key": self.key,
            "kind": self.kind,
            "resource": self.resource,
            "change": self.change,
            "fields": list(self.fields),
            "state": self.state,
            "note": self.note,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
        }


DRIFT_COLUMNS = (
    "element, collection, key, kind, resource, change, fields, revision, state, note, "
    "first_seen, last_seen"
)


def drift_item(row: Sequence[Any]) -> DriftItem:
    """A `DriftItem` from a row of DRIFT_COLUMNS."""
    return DriftItem(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        tuple(json.loads(row[6])),
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
    )


DE_COLUMNS = (
    "id, element, collection, key, form, kind, resource, action, error_type, reason, "
    "status, detail, fields_hash, time, last_retried, attempts"
)


def distribution_error(row: Sequence[Any]) -> DistributionError:
    """A `DistributionError` from a row of DE_COLUMNS."""
    (id_, element, collection, key, form, kind, resource, action, etype, reason, status) = row[:11]
    return DistributionError(
        id_,
        element,
        collection,
        key,
        form,
        kind,
        resource,
        action,
        etype,
        reason,
        status,
        json.loads(row[11]),
        row[12],
        row[13],
        row[14],
        row[15],
    )
