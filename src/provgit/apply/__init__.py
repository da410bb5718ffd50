"""The apply stage: execute a Plan on the elements, durably, and say what happened."""

from provgit.apply.engine import Applier, apply_plan
from provgit.apply.locks import ElementLock, LockHeld
from provgit.apply.options import ApplyOptions
from provgit.apply.progress import NoProgress, Progress
from provgit.apply.result import ApplyResult, ElementResult, OpResult
from provgit.apply.transport import WriteHook, WriteMoment, install_write_hook

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
