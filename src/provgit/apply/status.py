"""Sync status in the words our users know (the IVR Routing and SDS seeds).

Per element: `Sync Completed`, `Synching <element>` while applying,
`Failed <element>`, `Stopped` (the element answers that its services are
stopped), `Offline` (it cannot be reached) and `Token refused` (it answered,
but refused provgit's token: wrong, expired or missing; not the same fix as
an element that is down). A run refused for safety says so on the elements it
would have written (`Refused: queue cap`), never `Sync Completed`. Per resource: `Syncing IVRs X/Y
Completed` while its IVR content is being applied (other kinds: `Syncing X/Y
Completed`), then `Sync Completed` or `Sync Incomplete` when some of its target
elements failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from provgit.registry import IVR_KINDS as IVR_KINDS

if TYPE_CHECKING:  # pydantic: a status in sync builds no settings model
    from provgit.model.settings import Alarms

SYNC_COMPLETED = "Sync Completed"
# An element marked read_only: what a run did there (report/states.py says the same).
READ_ONLY = "Read only: observed, not written by provgit"
SYNC_INCOMPLETE = "Sync Incomplete"
STOPPED = "Stopped"
OFFLINE = "Offline"
TOKEN_REFUSED = "Token refused"
# The IVR seed's "IVR Routing Service disruption" message.
IVR_DOWN = "IVR services are stopped or the server is offline"
LOCKED = "Locked"
# Observation / element states in which an element counts as down: its writes
# are kept as pending updates, and going in or out of them is an event.
DOWN_STATES = frozenset({"offline", "stopped", "unauthorized", "locked", "error"})
# IVR_KINDS (the kinds the IVR seed calls "IVR" content) comes from the registry.
ALARM_LEVELS = ("warning", "minor", "major")


def down_status(element: str, state: str, element_type: str = "") -> str:
    """The element status for an element found down in `state` (an observation
    state); an IVR server stopped or offline in the IVR seed's words."""
    if state in ("offline", "stopped") and element_type == "ivr":
        return IVR_DOWN
    if state == "offline":
        return OFFLINE
    if state == "stopped":
        return STOPPED
    if state == "unauthorized":
        return TOKEN_REFUSED
    if state == "locked":
        return LOCKED
    return failed(element)


def refused(why: str) -> str:
    return f"Refused: {why}"


def synching(element: str) -> str:
    return f"Synching {element}"


def failed(element: str) -> str:
    return f"Failed {element}"


def syncing(kind: str, completed: int, total: int) -> str:
    what = "IVRs " if kind in IVR_KINDS else ""
    return f"Syncing {what}{completed}/{total} Completed"


def alarm_level(count: int, alarms: Alarms) -> str | None:
    """The SDS alarm level for a distribution error count (above each threshold)."""
    if count > alarms.major:
        return "major"
    if count > alarms.minor:
        return "minor"
    if count > alarms.warning:
        return "warning"
    return None
