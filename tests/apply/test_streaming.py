"""How a wave goes out, on embedded elements (real element stores, no processes):
plan order with one request in flight, and a journal failure that stops sending."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from provgit.api.network import connect
from provgit.api.planning import plan_network
from provgit.apply import ApplyOptions, apply_plan
from provgit.cli.common import read_source
from provgit.drivers.base import Driver, WriteOp, WriteResult
from provgit.journal import Journal
from provgit.plan import PlanOptions
from provgit.simulator.store import ElementStore
from provgit.validate import validate_source

USERS = 20


def _config(root: Path, extra: str) -> Path:
    root.mkdir(parents=True)
    (root / "provgit.yaml").write_text(f"version: 1\nnetwork: t\napply:\n{extra}")
    lines = [
        "elements:",
        "  - {name: mcl, type: micollab, ceid: 1}",
        "  - {name: cs1, type: mivb, ceid: 2, cluster: east}",
        "classes_of_service:",
        "  - {number: 1, comment: Default}",
        "templates:",
        "  - name: Basic",
        '    phones: [{label: Desk, device_type: "6920", primary: true}]',
        "    cos: {day: 1}",
        "roles:",
        "  - {name: Agent, template: Basic}",
        "users:",
    ]
    lines += [
        f"  - {{login_id: u{n:02d}, first_name: A, last_name: B, role: Agent, host: cs1, "
        f"services: [{{dn: '{2000 + n}'}}]}}"
        for n in range(USERS)
    ]
    (root / "net.yaml").write_text("\n".join(lines) + "\n")
    return root


class Recording:
    """The element's own driver, with the keys of every batch written, in order."""

    def __init__(self, inner: Driver) -> None:
        self.inner = inner
        self.batches: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def write_batch(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        self.batches.append([op.key for op in ops])
        await asyncio.sleep(0.005)  # an answer takes a moment, as on any element
        return await self.inner.write_batch(ops)


class FailingJournal(Journal):
    """The journal's disk fills up after a few outcomes."""

    outcomes_left = 5

    def record_outcomes(self, outcomes: Any, element: str | None = None) -> None:
        rows = list(outcomes)
        if rows and FailingJournal.outcomes_left <= 0:
            raise sqlite3.OperationalError("database or disk is full")
        FailingJournal.outcomes_left -= len(rows)
        super().record_outcomes(rows, element)


def _apply(config: Path, journal_class: type[Journal] = Journal) -> tuple[Recording, Any]:
    state = config / ".provgit"

    async def main() -> tuple[Recording, Any]:
        source = read_source(config)
        valid = validate_source(source, None)
        assert valid.ok, valid.diagnostics[:3]
        run = await plan_network(valid.state, source, config, state, PlanOptions())
        network = connect(valid.state, state, config)
        cs1 = Recording(network.drivers["cs1"])
        drivers: dict[str, Any] = {**network.drivers, "cs1": cs1}
        j = journal_class(state / "journal.sqlite")
        try:
            plan = run.plan.only(["cs1"])  # one element: its writes alone count below
            result: Any = await apply_plan(
                plan, drivers, j, valid.state.settings, state, ApplyOptions(check_stale=False)
            )
        except sqlite3.OperationalError as e:
            result = e
        finally:
            await network.close()
            j.close()
        # Nothing of the apply may still be running once it has returned.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert others == []
        return cs1, result

    return asyncio.run(main())


def _users_on(config: Path) -> set[str]:
    store = ElementStore(config / ".provgit" / "elements" / "cs1.sqlite")
    try:
        rows = store._db.execute("SELECT key FROM records WHERE collection = 'users'")
        return {r[0] for r in rows}
    finally:
        store.close()


def test_one_request_in_flight_sends_an_element_its_writes_in_plan_order(tmp_path: Path) -> None:
    config = _config(tmp_path / "config", "  batch_size: 1\n  batches_in_flight: 1\n")
    cs1, result = _apply(config)
    assert result.ok
    users = [key for batch in cs1.batches for key in batch if key.startswith("u")]
    assert users == [f"u{n:02d}" for n in range(USERS)]


def test_a_journal_failure_stops_sending_and_leaves_nothing_running(tmp_path: Path) -> None:
    config = _config(tmp_path / "config", "  batch_size: 2\n  batches_in_flight: 1\n")
    FailingJournal.outcomes_left = 5
    cs1, result = _apply(config, FailingJournal)
    assert isinstance(result, sqlite3.OperationalError)
    sent = {key for batch in cs1.batches for key in batch}
    landed = _users_on(config)
    # It stopped: a few batches went out (the ones prepared ahead included),
    # far from all of them, and nothing was written after the failure.
    assert landed == {k for k in sent if k.startswith("u")}
    assert 0 < len(landed) < USERS // 2


@pytest.fixture(autouse=True)
def _no_state_dir_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
