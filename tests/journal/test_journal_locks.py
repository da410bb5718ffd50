"""Opening the journal again never takes the locks of the connections already open.

A process loses every POSIX lock it holds on a file when it closes any
descriptor of that file. SQLite keeps a shared lock on a WAL database for as
long as a connection is open; without it, another process closing its last
connection believes it is the last one and checkpoints and resets the WAL
underneath the connections still open ("database disk image is malformed",
found with a watcher and commands sharing one state directory).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from provgit.journal import FILENAME, Journal

# SQLite's lock bytes (os_unix.c): the shared range starts 2 bytes after PENDING_BYTE.
SHARED_FIRST = 0x40000000 + 2
SHARED_SIZE = 510

PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, int(sys.argv[3]), int(sys.argv[2]))
except OSError:
    sys.exit(1)  # someone holds a lock there
sys.exit(0)
"""


def _shared_lock_held_by_another_process(path: Path) -> bool:
    p = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), str(SHARED_FIRST), str(SHARED_SIZE)],
        timeout=30,
    )
    return p.returncode == 1


def test_a_second_open_keeps_the_shared_lock_of_the_first_connection(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as first:
        first.pending_count()
        path = tmp_path / FILENAME
        assert _shared_lock_held_by_another_process(path)
        with Journal.open(tmp_path) as second:  # makes the file private again
            second.pending_count()
        assert _shared_lock_held_by_another_process(path), (
            "opening the journal again dropped the locks of the connection already open"
        )
