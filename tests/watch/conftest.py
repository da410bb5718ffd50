"""Fixtures of the watch tests: real simulators and the watchers a test starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apply.helpers import Sim, start_sims
from journal import pg
from provgit.journal import location

from .explain import explain
from .helpers import Watch


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test that started watchers says what they logged and, for
    replicas, what the shared journal holds (explain.py), taken at the
    failure, while the watchers still run."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    started = funcargs.get("watches")
    if report.when == "call" and report.failed and started:
        where = funcargs["tmp_path"] / "explain" if "tmp_path" in funcargs else None
        if where is not None:
            report.sections.append(("what the watchers saw", explain(started, where)))
    return report


@pytest.fixture(autouse=True)
def _journal_in_the_state_directory() -> Iterator[None]:
    """No test leaves a journal URL or a fleet network (from an in-process
    `cli("--journal-url", ..., "--network", ...)`) to the next one."""
    yield
    location.use_journal_url(None)
    location.use_network(None)
    location.configure(None)


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
    """Watchers started by a test; all stopped at the end with SIGTERM, whatever
    happened, and each must have exited cleanly (Watch.shutdown_problems):
    the shutdown path is checked by every test that starts a watcher."""
    started: list[Watch] = []
    try:
        yield started
    finally:
        problems = {w.proc.pid: w.shutdown_problems() for w in started}
        unclean = {pid: p for pid, p in problems.items() if p}
        assert not unclean, f"watchers that did not stop cleanly: {unclean}"


@pytest.fixture(scope="module")
def pg_server() -> Iterator[pg.Server]:
    why = pg.missing()
    if why is not None:
        pytest.fail(f"PostgreSQL is needed for the replica tests: {why}")
    with pg.running() as server:
        yield server


@pytest.fixture
def four_sims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sim]]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    # Three call servers and the MiCollab the users live on.
    specs = [("cs1", "mivb"), ("cs2", "mivb"), ("cs3", "mivb"), ("mcl", "micollab")]
    started = start_sims(tmp_path, specs)
    try:
        yield started
    finally:
        for s in started:
            s.stop()
