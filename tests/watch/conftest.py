"""Fixtures of the watch tests: real simulators and the watchers a test starts."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from apply.helpers import Sim, start_sims

from .helpers import Watch


@pytest.fixture
def sims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sim]]:
    """Two simulated call servers (cs1, cs2) on 127.0.0.1."""
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    started = start_sims(tmp_path, [("cs1", "mivb"), ("cs2", "mivb")])
    try:
        yield started
    finally:
        for s in started:
            s.stop()


@pytest.fixture
def watches() -> Iterator[list[Watch]]:
    """Watchers started by a test; all stopped at the end, whatever happened."""
    started: list[Watch] = []
    try:
        yield started
    finally:
        for w in started:
            w.stop(signal.SIGKILL if w.proc.poll() is None else signal.SIGTERM, timeout=5)
