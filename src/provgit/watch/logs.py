"""Structured logs for the watcher: one JSON object per line, or plain lines.

Callers pass an event name and plain fields; nothing here ever sees record
fields, so a secret value has no way in. Values that look like provgit's
sensitive-field markers are redacted anyway, as a second line of defence.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

from provgit.api.watching import redact

LEVELS = ("debug", "info", "warning", "error")


class Log:
    def __init__(self, fmt: str = "plain", stream: TextIO | None = None, debug: bool = False):
        self.fmt = fmt
        self.stream = stream or sys.stderr
        self.min_level = 0 if debug else 1
        # Lines come from the event loop and from worker threads (validation).
        self._lock = threading.Lock()
        self.bound: dict[str, Any] = {}

    def bind(self, **fields: Any) -> Log:
        """The same log, every line carrying `fields` too (a fleet's `network`)."""
        child = Log(self.fmt, self.stream)
        child.min_level, child._lock = self.min_level, self._lock
        child.bound = {**self.bound, **fields}
        return child

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if LEVELS.index(level) < self.min_level:
            return
        clean = redact({**self.bound, **fields} if self.bound else fields)
        now = time.time()
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        )
        if self.fmt == "json":
            line = json.dumps(
                {"time": stamp, "level": level, "event": event, **clean},
                default=str,
                separators=(",", ":"),
            )
        else:
            parts = " ".join(f"{k}={_plain(v)}" for k, v in clean.items() if v is not None)
            line = f"{stamp} {level:<7} {event}" + (f" {parts}" if parts else "")
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed stderr must never stop the reconciler

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)


def _plain(value: Any) -> str:
    """A value as one token of a plain line: quoted (JSON) when it holds a
    space, or anything not printable (a line break would forge a log line,
    an escape sequence reach the terminal following the log)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (" " in text or not text or not text.isprintable()) else text
