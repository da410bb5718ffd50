"""The simulator's injected faults, and the strict reading of a change to them.

`POST /admin/faults` takes a partial setting (the OpenAPI `FaultsChange`):
every name known and every value of its own JSON type. A change that is not
exactly that is refused whole with a message saying which name and why, and
nothing changes: `{"offline": "false"}` must never take an element offline.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from provgit.simulator.callload import HELP, LoadProfile
from provgit.simulator.store import ElementStore

# First guess of how late a sleep ends (the selector rounds up to whole
# milliseconds); each answer then corrects it (see `Faults.late`).
TIMER_SLACK = 0.001
MAX_LATE = 0.005

_NUMBERS = ("latency_ms", "jitter_ms", "error_rate")
_FLAGS = ("offline", "locked", "token_revoked")
KNOWN = (*_NUMBERS, *_FLAGS, "refuse", "call_load", "lie", "refuse_reason")
LIES = ("drop", "alter", "revert", "one", "stale")


@dataclass
class Faults:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    refuse: set[tuple[str, str]] = field(default_factory=set)
    # The element no longer accepts the token it was given (revoked, expired):
    # every API call is answered 401, as a wrong token is; admin calls are not.
    token_revoked: bool = False
    # How late a sleep ends on this machine, learnt from every delayed answer.
    late: float = TIMER_SLACK

    def delay(self) -> float:
        jitter = random.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.latency_ms + jitter) / 1000.0


@dataclass(frozen=True)
class FaultChange:
    """A validated partial setting: None means "leave as it is"."""

    numbers: dict[str, float]
    offline: bool | None
    locked: bool | None
    refuse: frozenset[tuple[str, str]] | None
    token_revoked: bool | None = None
    # A call-load profile starting now ("" for none), or None: leave it.
    call_load: str | None = None
    # One of LIES, "" (tell the truth again), or None: leave it.
    lie: str | None = None
    # The reason given for the refusals `refuse` forces (any text: a hostile
    # element's), or None: leave it.
    refuse_reason: str | None = None


def read_change(body: Any) -> FaultChange:
    """The change a `/admin/faults` body asks for; ValueError naming what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object of faults to change")
    unknown = sorted(str(k) for k in body if k not in KNOWN)
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise ValueError(f"unknown fault(s) {names}; known: {', '.join(KNOWN)}")
    numbers = {name: _number(name, body[name]) for name in _NUMBERS if name in body}
    flags = {name: _flag(name, body[name]) for name in _FLAGS if name in body}
    refuse = _refuse(body["refuse"]) if "refuse" in body else None
    call_load = _call_load(body["call_load"]) if "call_load" in body else None
    lie = _lie(body["lie"]) if "lie" in body else None
    reason = body.get("refuse_reason")
    if "refuse_reason" in body and not isinstance(reason, str):
        raise ValueError(f"refuse_reason must be a string, got {_json_type(reason)}")
    return FaultChange(
        numbers,
        flags.get("offline"),
        flags.get("locked"),
        refuse,
        flags.get("token_revoked"),
        call_load,
        lie,
        reason,
    )


def _lie(value: Any) -> str:
    if value is None:
        return ""
    if value not in LIES:
        raise ValueError(f"lie must be one of {', '.join(LIES)}, or null")
    return str(value)


def _call_load(value: Any) -> str:
    """A profile's canonical text ("" for null), read before anything changes."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"call_load must be {HELP}, or null; got {_json_type(value)}")
    return LoadProfile.parse(str(value)).text()


def _number(name: str, value: Any) -> float:
    # bool is an int in Python, not a number in JSON.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {_json_type(value)}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a number of 0 or more, got {value}")
    if name == "error_rate" and number > 1:
        raise ValueError(f"error_rate is a share of requests, 0 to 1, got {value}")
    return number


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {_json_type(value)}")
    return value


def _refuse(value: Any) -> frozenset[tuple[str, str]]:
    if not isinstance(value, list):
        raise ValueError(f"refuse must be a list of {{collection, key}}, got {_json_type(value)}")
    out: set[tuple[str, str]] = set()
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ValueError(f"refuse[{i}] must be an object, got {_json_type(item)}")
        extra = sorted(str(k) for k in item if k not in ("collection", "key"))
        if extra:
            raise ValueError(f"refuse[{i}] has unknown name(s) {', '.join(map(repr, extra))}")
        collection, key = item.get("collection"), item.get("key")
        if not isinstance(collection, str) or not isinstance(key, str):
            raise ValueError(f"refuse[{i}] needs collection and key, both strings")
        out.add((collection, key))
    return frozenset(out)


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def apply_faults(store: ElementStore, faults: Faults, changes: Any) -> None:
    """Apply a partial fault setting (the /admin/faults body): all of it or, on a
    ValueError, none of it."""
    change = read_change(changes)
    if change.call_load is not None:
        store.set_call_load(change.call_load or None)
    if change.lie is not None:
        store.lie = change.lie or None
    if change.refuse_reason is not None:
        store.refusal_reason = change.refuse_reason
    for name, value in change.numbers.items():
        setattr(faults, name, value)
    if change.token_revoked is not None:
        faults.token_revoked = change.token_revoked
    if change.refuse is not None:
        # The store holds the same set object (forced refusals): change it in place.
        faults.refuse.clear()
        faults.refuse.update(change.refuse)
    if change.offline is not None or change.locked is not None:
        state = store.state
        offline = state == "offline" if change.offline is None else change.offline
        locked = state == "locked" if change.locked is None else change.locked
        store.set_state("offline" if offline else "locked" if locked else "running")
