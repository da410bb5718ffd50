"""Files written so a reader (or a crash) never sees half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(
    path: str | os.PathLike[str], data: bytes, fsync: bool = True, mode: int | None = None
) -> None:
    """Write to a temporary file beside `path`, then rename over it.

    The file keeps mkstemp's 0600 (right for state) unless `mode` says otherwise
    (reports a web server or a colleague's browser must read use 0644).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
