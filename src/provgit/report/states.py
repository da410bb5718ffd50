"""The states a record, resource or element can be in, worst first, and their words."""

from __future__ import annotations

from provgit.apply import status as st

# Machine names of the states, worst first (a resource or element takes the
# worst state of its records; the page header takes the worst of all).
TOKEN_REFUSED = "token_refused"
DRIFT = "drift"
OFFLINE = "offline"
STOPPED = "stopped"
UNREADABLE = "error"
DISTRIBUTION_ERROR = "distribution_error"
# Drift held while a branch proposing it waits for review (`watch --drift
# propose`, `import --drift`): in hand, so below drift and errors.
DRIFT_PROPOSED = "drift_proposed"
PENDING = "pending"
NOT_APPLIED = "not_applied"
UNKNOWN = "unknown"
COMPLETED = "completed"
SEVERITY = (
    TOKEN_REFUSED,
    DRIFT,
    OFFLINE,
    STOPPED,
    UNREADABLE,
    DISTRIBUTION_ERROR,
    DRIFT_PROPOSED,
    PENDING,
    NOT_APPLIED,
    UNKNOWN,
    COMPLETED,
)
_RANK = {s: i for i, s in enumerate(SEVERITY)}
# An element marked read_only (observed, never written): outside the ranking on
# purpose. Nothing lands there, so it is neither a completed landing nor one
# provgit still owes: no resource counts it and it never holds back in_sync.
READ_ONLY = "read_only"
READ_ONLY_TEXT = st.READ_ONLY
DOWN_STATES = frozenset({OFFLINE, STOPPED, UNREADABLE, TOKEN_REFUSED, UNKNOWN})

# The IVR seed's words for an IVR server that cannot serve ("All" devices).
IVR_DOWN = "IVR services are stopped or the server is offline"
TOKEN_REFUSED_TEXT = "Token refused"
UNKNOWN_TEXT = "Unknown (never observed)"
DRIFT_TEXT = "Drift"
DRIFT_PROPOSED_TEXT = "Drift proposed"
NOT_APPLIED_TEXT = "Not yet applied"
PENDING_TEXT = "Pending update"
LABELS = {
    TOKEN_REFUSED: TOKEN_REFUSED_TEXT,
    DRIFT: DRIFT_TEXT,
    OFFLINE: st.OFFLINE,
    STOPPED: st.STOPPED,
    UNREADABLE: "Element error",
    DISTRIBUTION_ERROR: "Distribution error",
    DRIFT_PROPOSED: DRIFT_PROPOSED_TEXT,
    PENDING: PENDING_TEXT,
    NOT_APPLIED: NOT_APPLIED_TEXT,
    UNKNOWN: UNKNOWN_TEXT,
    COMPLETED: st.SYNC_COMPLETED,
    READ_ONLY: READ_ONLY_TEXT,
}

Ref = tuple[str, str]  # (collection, key)
Write = tuple[str, str | None, int]  # (action, fields hash, revision)


def worst(a: str, b: str) -> str:
    return a if _RANK[a] <= _RANK[b] else b


def label(state: str, element_type: str | None = None) -> str:
    """The words of a state; an IVR server that cannot serve says what the seed says."""
    if element_type == "ivr" and state in (OFFLINE, STOPPED):
        return IVR_DOWN
    return LABELS[state]


def element_text(name: str, state: str, element_type: str | None) -> str:
    if state == READ_ONLY:
        return READ_ONLY_TEXT
    if state == COMPLETED:
        return st.SYNC_COMPLETED
    if state == DRIFT_PROPOSED:
        return DRIFT_PROPOSED_TEXT
    if state in (DISTRIBUTION_ERROR, DRIFT, PENDING):
        return st.failed(name)
    return label(state, element_type)


def status_class_of(state: str) -> str:
    if state == COMPLETED:
        return "ok"
    if state == READ_ONLY:
        return "info"  # neither good nor bad: provgit does not write there
    if state in (OFFLINE, STOPPED, UNKNOWN):
        return "down"
    if state in (PENDING, NOT_APPLIED):
        return "syncing"
    if state == DRIFT_PROPOSED:
        return "held"  # waiting for a person to merge or close the branch
    return "failed"
