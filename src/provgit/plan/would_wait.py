"""What a suspension, a sync window or the call load would hold of a plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WouldWait:
    """Planned operations on one element that a suspension, a sync window or
    the call load would hold if applied when planned (`apply/hold_preview.py`).
    Informational: apply decides again when it runs."""

    source: str  # "suspended", "window" or "call_load"
    reason: str  # e.g. "call load 85 % (limit 20 %)"
    operations: tuple[tuple[str, str], ...]  # (collection, key), in plan order

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "reason": self.reason,
            "operations": [list(r) for r in self.operations],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> WouldWait:
        return cls(
            str(d["source"]),
            str(d["reason"]),
            tuple((str(a), str(b)) for a, b in d.get("operations", [])),
        )
