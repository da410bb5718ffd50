"""What a driver is handed: its element's config. The protocol lives in `provgit.wire`.

The values a driver exchanges with its element, the element's answers as
exceptions and the `Driver` interface moved to `provgit.wire.protocol`, which
the simulator shares without importing the drivers. They are re-exported here
so code that imports them from `provgit.drivers.base` keeps working while it
moves over (issue #14); new code imports `provgit.wire.protocol`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provgit.wire.protocol import (
    CallLoad,
    Change,
    ChangeFeed,
    ConflictError,
    Driver,
    ElementError,
    ElementInfo,
    ElementState,
    FeedTooOldError,
    FencedError,
    LockedError,
    NotFoundError,
    OfflineError,
    Page,
    Refusal,
    RefusedError,
    StoredRecord,
    TransportError,
    UnauthorizedError,
    WriteOp,
    WriteResult,
)

# The most one answer of an element may hold, whatever the driver: a page of
# 5,000 records or a feed page of 10,000 changes is a few MB, so this is far
# above any honest one; past it the read stops and the element is not in sync.
MAX_ANSWER_BYTES = 256 * 2**20

__all__ = [
    "MAX_ANSWER_BYTES",
    "CallLoad",
    "Change",
    "ChangeFeed",
    "ConflictError",
    "Driver",
    "DriverConfig",
    "ElementError",
    "ElementInfo",
    "ElementState",
    "FeedTooOldError",
    "FencedError",
    "LockedError",
    "NotFoundError",
    "OfflineError",
    "Page",
    "Refusal",
    "RefusedError",
    "StoredRecord",
    "TransportError",
    "UnauthorizedError",
    "WriteOp",
    "WriteResult",
]


@dataclass(frozen=True)
class DriverConfig:
    """What an element's config hands its driver (secrets already resolved)."""

    element: str
    element_type: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    state_dir: str = ".provgit"
