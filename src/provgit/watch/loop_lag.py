"""How late the event loop is: a task that sleeps a fixed interval and notes
how much later than asked it woke (issue #19).

Everything a watcher serves (the status server, `/healthz`) and starts (runs,
timers) shares one event loop; any synchronous step on it (a journal
statement waiting on a lock, a CPU-heavy derivation) holds all of them up. The
worst lag over the last minute is a gauge in `/metrics`
(`provgit_event_loop_lag_seconds`), and `seen` (when the loop last woke the
probe) tells the replica's lease renewals, which run in a thread of their own
(replicas.py), whether the loop still moves.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque

INTERVAL = 0.25  # seconds between the probe's wake-ups
WINDOW = 60.0  # the gauge's worst lag is over this many seconds


class LoopLag:
    def __init__(self, interval: float = INTERVAL, window: float = WINDOW) -> None:
        self.interval = interval
        self.window = window
        self.seen = time.monotonic()  # when the loop last woke the probe (monotonic)
        self._lags: deque[tuple[float, float]] = deque()  # (when, lag), a falling run
        self._lock = threading.Lock()  # read from other threads (renewals, scrapes)

    async def run(self) -> None:
        """Until cancelled."""
        self.seen = time.monotonic()
        while True:
            due = time.monotonic() + self.interval
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            self.seen = now
            self.observe(now, max(0.0, now - due))

    def observe(self, now: float, lag: float) -> None:
        with self._lock:
            # Only the worst matters: a lag older and not larger than a newer
            # one can never be the window's worst again.
            while self._lags and self._lags[-1][1] <= lag:
                self._lags.pop()
            self._lags.append((now, lag))
            while self._lags[0][0] < now - self.window:
                self._lags.popleft()

    def stalled_for(self, now: float | None = None) -> float:
        """How long the loop is overdue now (0 while it wakes the probe on time)."""
        now = time.monotonic() if now is None else now
        return max(0.0, now - self.seen - self.interval)

    def worst(self, now: float | None = None) -> float:
        """The loop's worst lag within the window, the wait going on included."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._lags and self._lags[0][0] < now - self.window:
                self._lags.popleft()
            past = self._lags[0][1] if self._lags else 0.0
        return max(past, self.stalled_for(now))
