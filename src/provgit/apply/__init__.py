"""The apply stage: execute a Plan on the elements, durably, and say what happened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provgit.lazy import lazy_exports

if TYPE_CHECKING:
    from provgit.apply.engine import Applier, apply_plan
    from provgit.apply.locks import ElementLock, LockHeld
    from provgit.apply.options import ApplyOptions
    from provgit.apply.progress import NoProgress, Progress
    from provgit.apply.result import ApplyResult, ElementResult, OpResult
    from provgit.apply.transport import WriteHook, WriteMoment, install_write_hook

# Loaded on first use (PEP 562): the report derivation reads `apply.status`
# and `apply.standing`, and `status` the result type; importing any submodule
# runs this file first, and the engine (waves, transport, drift detection,
# holds: ~40 modules) is no part of a status.
_LAZY: dict[str, str] = {
    "Applier": "provgit.apply.engine",
    "apply_plan": "provgit.apply.engine",
    "ElementLock": "provgit.apply.locks",
    "LockHeld": "provgit.apply.locks",
    "ApplyOptions": "provgit.apply.options",
    "NoProgress": "provgit.apply.progress",
    "Progress": "provgit.apply.progress",
    "ApplyResult": "provgit.apply.result",
    "ElementResult": "provgit.apply.result",
    "OpResult": "provgit.apply.result",
    "WriteHook": "provgit.apply.transport",
    "WriteMoment": "provgit.apply.transport",
    "install_write_hook": "provgit.apply.transport",
}


__getattr__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "Applier",
    "ApplyOptions",
    "ApplyResult",
    "ElementLock",
    "ElementResult",
    "LockHeld",
    "NoProgress",
    "OpResult",
    "Progress",
    "WriteHook",
    "WriteMoment",
    "apply_plan",
    "install_write_hook",
]
