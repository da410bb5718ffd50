"""The apply stage: execute a Plan on the elements, durably, and say what happened."""

from provgit.apply.engine import KILL_HOOK_ENV, ApplyOptions, apply_plan
from provgit.apply.locks import ElementLock, LockHeld
from provgit.apply.progress import NoProgress, Progress
from provgit.apply.result import ApplyResult, ElementResult, OpResult

__all__ = [
    "KILL_HOOK_ENV",
    "ApplyOptions",
    "ApplyResult",
    "ElementLock",
    "ElementResult",
    "LockHeld",
    "NoProgress",
    "OpResult",
    "Progress",
    "apply_plan",
]
