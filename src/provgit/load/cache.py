"""Parsed files keyed by content hash, so an unchanged file is never parsed twice.

Entries are `marshal` dumps of plain data (the fastest format CPython reads).
The directory is safe to delete at any time; a corrupt or partial entry is a
cache miss, never an error.
"""

from __future__ import annotations

import contextlib
import marshal
import os
from pathlib import Path
from typing import Any

from provgit.fsutil import atomic_write, read_state_file

# Bump when the parser's output for the same bytes could change.
CACHE_FORMAT = "2"  # 2: integers past 64 bits refused (yaml_events.OutOfRange)


class ParseCache:
    def __init__(self, directory: str | os.PathLike[str] | None) -> None:
        self.directory = Path(directory) if directory is not None else None

    def _path(self, blob_id: str) -> Path:
        assert self.directory is not None
        return self.directory / f"v{CACHE_FORMAT}" / blob_id[:2] / f"{blob_id[2:]}.marshal"

    def get(self, blob_id: str) -> list[Any] | None:
        if self.directory is None:
            return None
        try:
            raw = read_state_file(self._path(blob_id))
            docs = marshal.loads(raw)
        except (OSError, EOFError, ValueError, TypeError):
            return None
        return docs if isinstance(docs, list) else None

    def put(self, blob_id: str, marshalled: bytes) -> None:
        """Store `marshal.dumps(docs)` (callers usually have those bytes already)."""
        if self.directory is None:
            return
        put_raw(self._path(blob_id), marshalled)


def put_raw(path: Path, raw: bytes) -> None:
    # No fsync: a lost entry after a power cut is only a cache miss; a full disk
    # or a read-only tree only costs speed.
    with contextlib.suppress(OSError):
        atomic_write(path, raw, fsync=False)
