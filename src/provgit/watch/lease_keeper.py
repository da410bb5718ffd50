"""The replica's side of its lease keeper (journal/lease_keeper.py, issue #19).

Spawns the keeper process (never a fork of this threaded process), tells it at
every renewal round what this replica holds and when its event loop last
moved, and reads what the keeper renewed. The keeper renews those leases while
this interpreter cannot (a garbage collection or another long C call holding
the GIL), and stops when the event loop has not moved within the stall bound,
when this process dies, or when `close` hands the leases over.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

from provgit.api.watching import keeper_published
from provgit.watch.logs import Log

# How long a closing keeper may take to finish a round in flight.
CLOSE_WAIT_S = 10.0


class LeaseKeeper:
    def __init__(
        self,
        replica: str,
        url: str,
        password: str | None,
        schema: str | None,
        lease_seconds: float,
        margin: float,
        log: Log,
    ) -> None:
        self.replica = replica
        self.settings = {
            "replica": replica,
            "journal_url": url,
            "password": password,
            "schema": schema,
            "lease_seconds": lease_seconds,
            "margin": margin,
            "stall_seconds": 4 * lease_seconds,
            "pid": os.getpid(),
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.directory: Path | None = None
        self._lock = threading.Lock()  # one writer of the pipe at a time
        self._read_at = -1.0
        self._kept: dict[str, tuple[int, float]] = {}
        self._gone = False

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        """Spawn the keeper (call from the main thread)."""
        try:
            self.directory = Path(tempfile.mkdtemp(prefix="provgit-keeper-"))
            self.process = subprocess.Popen(
                [sys.executable, "-m", "provgit.journal.lease_keeper"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # its errors could name the database
                close_fds=True,
            )
        except OSError as e:
            self._gone = True
            self.log.warning(
                "lease_keeper_not_started",
                replica=self.replica,
                error=type(e).__name__,
                reason="the renewal thread alone renews the leases",
            )
            return
        self._send({**self.settings, "directory": str(self.directory)})
        self.log.info(
            "lease_keeper_started",
            replica=self.replica,
            pid=self.process.pid,
            directory=str(self.directory),
        )

    def tell(self, seen: float, tokens: dict[str, int], url: str | None) -> None:
        """What this replica holds now, and when its event loop last moved."""
        self._send({"seen": seen, "tokens": tokens, "url": url})

    def _send(self, message: dict[str, object]) -> None:
        process = self.process
        if process is None or process.stdin is None or self._gone:
            return
        line = (json.dumps(message) + "\n").encode()
        with self._lock:
            try:
                stdin: IO[bytes] = process.stdin
                stdin.write(line)
                stdin.flush()
            except (OSError, ValueError):
                self._gone = True
                self.log.warning(
                    "lease_keeper_exited",
                    replica=self.replica,
                    reason="the renewal thread alone renews the leases",
                )

    def renewed(self) -> dict[str, tuple[int, float]]:
        """element -> (token, monotonic time until which writes may go on), as
        the keeper renewed them last (read at most every 50 ms)."""
        now = time.monotonic()
        if self.directory is not None and now - self._read_at > 0.05:
            self._kept, self._read_at = keeper_published(self.directory), now
        return self._kept

    def close(self) -> None:
        """Stop the keeper before the leases are handed over: it renews nothing after."""
        process, self.process = self.process, None
        if process is not None:
            with self._lock:
                if process.stdin is not None:
                    with contextlib.suppress(OSError):
                        process.stdin.close()
            try:
                process.wait(CLOSE_WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
        self._kept = {}
