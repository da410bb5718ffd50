"""Moved to `provgit.incremental.disk` (issue #14); re-exported for old imports."""

from provgit.incremental.disk import (
    FORMAT,
    ElementMemo,
    MemoInputs,
    MemoMeta,
    PlanMemo,
    _safe,
    enabled,
    inputs_digest,
)

__all__ = [
    "FORMAT",
    "ElementMemo",
    "MemoInputs",
    "MemoMeta",
    "PlanMemo",
    "_safe",
    "enabled",
    "inputs_digest",
]
