"""Fixtures of the apply tests: real simulators on 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.kill_after import KILL_HOOK_ENV

from .helpers import BLIND, Blind, Sim, hostile, start_sims


@pytest.fixture
def sims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sim]]:
    """Two simulated call servers (cs1, cs2); no state dir or kill hook from outside."""
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    monkeypatch.delenv(KILL_HOOK_ENV, raising=False)
    started = start_sims(tmp_path, [("cs1", "mivb"), ("cs2", "mivb")])
    try:
        yield started
    finally:
        for s in started:
            s.stop()


@pytest.fixture
def short_feed_sims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sim]]:
    """cs1 and cs2 keeping 3 changes in their feeds: 8 writes outrun them."""
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    sims = start_sims(tmp_path, [("cs1", "mivb"), ("cs2", "mivb")], "--retention", "3")
    try:
        yield sims
    finally:
        for s in sims:
            s.stop()


@pytest.fixture
def blind() -> Iterator[Blind]:
    """`blind(sim, MODE)`: `sim` as seen through an element that goes blind (MODE)."""
    with contextlib.ExitStack() as stack:
        yield lambda sim, mode: stack.enter_context(hostile(BLIND, sim, mode))
