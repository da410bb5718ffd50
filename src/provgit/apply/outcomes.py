"""What a write's answer means, and what an element's run came to (pure).

No I/O here: the engine asks the element and the journal; these functions
only sort answers into landed / pending / distribution error, and an
element's operation counts into its final status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provgit.apply import drift_detect as drift
from provgit.apply import status as st
from provgit.apply.result import OpResult
from provgit.apply.work import ElementWork
from provgit.drivers.base import (
    ConflictError,
    ElementError,
    FencedError,
    NotFoundError,
    OfflineError,
    RefusedError,
    TransportError,
    UnauthorizedError,
    WriteResult,
)
from provgit.plan.model import Operation
from provgit.secrets import redact, scrub

DETAIL_FIELDS = 5


@dataclass(frozen=True)
class Landed:
    """The element holds what was wanted (written, already there, already gone)."""

    revision: int | None


@dataclass(frozen=True)
class Undelivered:
    """Not delivered for now (element-wide trouble): a pending update."""

    code: str
    message: str


@dataclass(frozen=True)
class LostLease:
    """The element refused the write's fencing token: this replica lost its
    lease on the element, whose new holder writes the record. Neither a
    pending update nor a distribution error of this replica's."""

    message: str


@dataclass(frozen=True)
class Rejected:
    """The element refused this record: a distribution error.

    `reason` is what the error says (its type's words, or the refusals);
    `message` the element's own answer, both with the record's secrets scrubbed.
    """

    error_type: str
    reason: str
    message: str


Outcome = Landed | Undelivered | Rejected | LostLease


UNOWNED_REASON = (
    "not provgit's (no ownership marker): `provgit plan --claim` plans taking ownership"
)


def may_be_identical(op: Operation, answer: WriteResult) -> bool:
    """A create that met an existing record: if it holds what we want, it landed."""
    return not answer.ok and isinstance(answer.error, ConflictError) and op.if_revision is None


def classify(op: Operation, answer: WriteResult) -> Outcome:
    err = answer.error
    if not answer.ok and isinstance(err, NotFoundError) and op.action == "delete":
        return Landed(None)  # already gone: what we wanted
    if answer.ok:
        return Landed(answer.revision)
    assert err is not None
    # An element may quote what it was sent: no secret of this record goes on
    # into the journal, the status or a log.
    message = scrub(err.message, op.fields)
    if isinstance(err, FencedError):
        return LostLease(message)
    if err.retryable or isinstance(err, UnauthorizedError):
        # A refused token is the element's trouble, not the record's: the
        # write waits, as for an element that is down, until the token is fixed.
        return Undelivered(err.code, message)
    if isinstance(err, ConflictError):
        if err.detail.get("unowned"):
            # Not a concurrent change: the record was never provgit's to write.
            return Rejected("conflict", UNOWNED_REASON, message)
        return Rejected("conflict", "changed by another user; refresh", message)
    if isinstance(err, NotFoundError):
        return Rejected("not_found", "deleted by another user; refresh", message)
    if isinstance(err, RefusedError):
        reason = "; ".join((f"{r.field}: " if r.field else "") + r.reason for r in err.refusals)
        return Rejected("refused", scrub(reason, op.fields) or message, message)
    return Rejected(err.code, message, message)


def detail(op: Operation) -> dict[str, Any]:
    """The first fields of the record, redacted (SDS shows the record's first columns)."""
    source: Mapping[str, Any]
    if op.fields is not None:
        source = op.fields
    else:
        source = {k: v.get("before") for k, v in op.changes.items()}
    visible = {k: v for k, v in source.items() if not k.startswith("_") and v is not None}
    return dict(list(redact(visible).items())[:DETAIL_FIELDS])


def down_state(error: ElementError) -> str:
    """The element state an element-wide failure stands for."""
    if isinstance(error, OfflineError):
        return "stopped"
    if isinstance(error, TransportError):
        return "offline"
    if isinstance(error, UnauthorizedError):
        return "unauthorized"
    return error.code


# Element states that say the element itself cannot take writes now (its
# services are stopped, it cannot be reached, it refuses provgit's token):
# what the element is, whatever of the run landed before.
ELEMENT_DOWN = frozenset({"stopped", "offline", "unauthorized"})


def conclude(w: ElementWork) -> None:
    """Set `w`'s final status and outcome from what became of its operations."""
    name, result = w.plan.element, w.result
    counts = result.counts()
    problems = sum(v for k, v in counts.items() if k != "ok")
    state = down_state(w.down) if w.down is not None else None
    if w.down is not None and problems and (counts["ok"] == 0 or state in ELEMENT_DOWN):
        # Down (or refusing the token) before or in the middle of its writes:
        # the element shows that state, the rest are pending updates, and
        # the writes that landed count as done.
        assert state is not None
        result.state = state
        result.status = (
            st.down_status(name, state, w.plan.element_type)
            if state in ELEMENT_DOWN
            else st.failed(name)
        )
        result.outcome = "unreachable"
        result.error = w.down.message
    elif w.hold is not None and problems == counts["pending"] + counts["skipped"]:
        # Nothing failed: the rest waits for the suspension or window.
        result.status, result.outcome = w.hold.reason, "held"
    elif problems:
        result.status, result.outcome = st.failed(name), "failed"
    else:
        result.status = st.SYNC_COMPLETED
        result.outcome = "applied" if w.ops else "in_sync"


def drift_report(
    review: drift.Review,
    held: Mapping[tuple[str, str, str], Any],
    outcomes: Mapping[str, Mapping[tuple[str, str], OpResult]],
) -> list[dict[str, Any]]:
    """The drift a run found, and what became of each record."""
    new = {(d.element, d.collection, d.key) for d in review.new}
    out = []
    for ref, d in sorted(review.found.items()):
        r = outcomes.get(d.element, {}).get((d.collection, d.key))
        outcome = (
            "corrected"
            if r is not None and r.status == "ok"
            else "held"
            if ref in held and r is not None and r.status == "held"
            else "reported"
        )
        out.append({**d.to_json(), "new": ref in new, "outcome": outcome})
    return out
