"""Moved to `provgit.incremental.store` (issue #14); re-exported for old imports."""

from provgit.incremental.store import TargetStore

__all__ = ["TargetStore"]
