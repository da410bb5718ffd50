"""Engine paths reached in-process, on real element stores (embedded elements)
and a real simulator process: a create that finds its record already there,
an element that goes down mid-apply or before it, a journal that cannot
commit intents, and a token refused at apply time."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provgit.api.network import connect
from provgit.api.planning import plan_network
from provgit.apply import ApplyOptions, ApplyResult, WriteMoment, apply_plan
from provgit.apply import status as st
from provgit.apply.transport import write_op
from provgit.apply.waves import waves
from provgit.cli.common import read_source
from provgit.drivers.base import WriteOp
from provgit.journal import Journal
from provgit.plan import Plan, PlanOptions
from provgit.simulator.store import ElementStore
from provgit.validate import Validated, validate_source
from support.kill_after import KILL_HOOK_ENV

from .helpers import PROVGIT, Sim, cli_killed_at, start_sims

# Fast retries: "retried, then kept as pending" takes a fraction of a second.
SETTINGS = """\
version: 1
network: t
apply:
  retry_attempts: 2
  retry_base_seconds: 0.01
  retry_max_seconds: 0.02
  batch_size: {batch_size}
  batches_in_flight: 1
"""


def _config(root: Path, users: int, batch_size: int = 100, cs1: str = "") -> Path:
    """An embedded MiCollab and call server cs1 (embedded unless `cs1` says how
    to reach it), `users` users on cs1."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "provgit.yaml").write_text(SETTINGS.format(batch_size=batch_size))
    lines = [
        "elements:",
        "  - {name: mcl, type: micollab, ceid: 1}",
        f"  - {{name: cs1, type: mivb, ceid: 2, cluster: east{cs1}}}",
        "classes_of_service:",
        "  - {number: 1, comment: Default}",
        "  - {number: 7, comment: Sales}",
        "templates:",
        "  - name: Basic",
        '    phones: [{label: Desk, device_type: "6920", primary: true}]',
        "    cos: {day: 1}",
        "roles:",
        "  - {name: Agent, template: Basic}",
        "users:",
    ]
    lines += [
        f"  - {{login_id: u{n:02d}, first_name: A, last_name: B{n}, role: Agent, host: cs1, "
        f"services: [{{dn: '{2000 + n}'}}]}}"
        for n in range(users)
    ]
    (root / "net.yaml").write_text("\n".join(lines) + "\n")
    return root


def _store(config: Path, element: str = "cs1") -> ElementStore:
    return ElementStore(config / ".provgit" / "elements" / f"{element}.sqlite")


def _keys_on(config: Path, collection: str, element: str = "cs1") -> set[str]:
    store = _store(config, element)
    try:
        return {
            k
            for (k,) in store._db.execute(
                "SELECT key FROM records WHERE collection = ?", (collection,)
            )
        }
    finally:
        store.close()


@dataclass
class Calls:
    """A write hook that counts the element write calls, and may act at one."""

    seen: list[tuple[int, WriteMoment]] = field(default_factory=list)
    at: tuple[int, WriteMoment] | None = None
    action: Callable[[], None] = lambda: None

    def __call__(self, n: int, moment: WriteMoment) -> None:
        self.seen.append((n, moment))
        if (n, moment) == self.at:
            self.action()

    @property
    def sent(self) -> int:
        return sum(1 for _, moment in self.seen if moment == "before")


def _validated(config: Path) -> tuple[Validated, Any]:
    source = read_source(config)
    valid = validate_source(source, None)
    assert valid.ok, valid.diagnostics[:3]
    return valid, source


def _plan(config: Path, elements: tuple[str, ...] = ("cs1",)) -> Plan:
    valid, source = _validated(config)
    run = asyncio.run(plan_network(valid.state, source, config, config / ".provgit", PlanOptions()))
    return run.plan.only(list(elements))


def _apply(
    config: Path,
    plan: Plan,
    hook: Calls | None = None,
    journal: Callable[[Path], Journal] = Journal.open,
) -> ApplyResult:
    """Apply `plan` as a fresh reconcile would (no staleness check), in this process."""
    valid, _ = _validated(config)
    state = config / ".provgit"

    async def main() -> ApplyResult:
        network = connect(valid.state, state, config)
        j = journal(state)
        try:
            return await apply_plan(
                plan,
                network.drivers,
                j,
                valid.state.settings,
                state,
                ApplyOptions(command="reconcile", check_stale=False, fresh=True),
                write_hook=hook,
            )
        finally:
            await network.close()
            j.close()

    return asyncio.run(main())


def _statuses(result: ApplyResult, element: str = "cs1") -> dict[tuple[str, str], Any]:
    (e,) = [e for e in result.elements if e.element == element]
    return {(op.collection, op.key): op for op in e.operations}


def test_a_create_that_finds_its_record_already_there_lands_and_a_different_one_conflicts(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path / "config", users=4)
    plan = _plan(config)
    (ep,) = plan.elements
    first = waves(ep.operations)[0]
    assert len(first) >= 2 and all(op.action == "add" for op in first), first
    same, other = first[0], first[1]
    # Someone wrote both records after the plan observed cs1: one as the plan
    # wants it, one with a field of its own.
    store = _store(config)
    try:
        other_fields = {**(other.fields or {}), "comment": "made by hand"}
        (written, changed) = store.write_batch(
            [write_op(same), WriteOp("put", other.collection, other.key, other_fields, None)]
        )
        assert written.ok and changed.ok
    finally:
        store.close()

    result = _apply(config, plan)

    ops = _statuses(result)
    assert ops[(same.collection, same.key)].status == "ok"
    # The revision the element gave the record, found in its change feed.
    assert ops[(same.collection, same.key)].revision == written.revision
    conflict = ops[(other.collection, other.key)]
    assert conflict.status == "failed" and conflict.error_type == "conflict"
    assert conflict.message == "changed by another user; refresh"
    with Journal.open(config / ".provgit") as j:
        (error,) = j.distribution_errors(element="cs1")
        assert (error.collection, error.key, error.error_type) == (
            other.collection,
            other.key,
            "conflict",
        )
        assert j.open_intents() == []


def test_an_element_going_down_before_its_first_write_lands_is_stopped_with_all_pending(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path / "config", users=4, batch_size=2)
    plan = _plan(config)
    (ep,) = plan.elements
    store = _store(config)
    calls = Calls(at=(1, "before"), action=lambda: store.set_state("offline"))
    try:
        result = _apply(config, plan, calls)
    finally:
        store.close()

    (cs1,) = result.elements
    # The first call and its retries (retry_attempts: 2), then nothing more is sent.
    assert calls.sent == 3
    assert cs1.outcome == "unreachable" and cs1.state == "stopped"
    assert cs1.status == st.STOPPED
    assert {op.status for op in cs1.operations} == {"pending"}
    assert len(cs1.operations) == len(ep.operations)
    with Journal.open(config / ".provgit") as j:
        assert j.pending_count() == len(ep.operations)
        assert j.element_statuses()["cs1"]["status"] == st.STOPPED
        assert [e.element for e in j.events() if e.type == "element_down"] == ["cs1"]
        # Intents of the batch that was tried are closed with their outcome.
        assert j.open_intents() == []
    assert _keys_on(config, "users") == set()


def test_an_element_going_down_mid_apply_is_stopped_and_keeps_the_rest_pending(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path / "config", users=4, batch_size=1)
    plan = _plan(config)
    (ep,) = plan.elements
    store = _store(config)
    calls = Calls(at=(2, "before"), action=lambda: store.set_state("offline"))
    try:
        result = _apply(config, plan, calls)
    finally:
        store.close()

    (cs1,) = result.elements
    counts = cs1.counts()
    assert counts["ok"] == 1 and counts["pending"] == len(ep.operations) - 1, counts
    assert calls.sent == 4  # the first write, then the second and its two retries
    # What the element is, not "Failed cs1": the write that landed counts as done.
    assert cs1.outcome == "unreachable" and cs1.state == "stopped"
    assert cs1.status == st.STOPPED
    pending = [op for op in cs1.operations if op.status == "pending"]
    assert {op.error_type for op in pending} == {"offline"}
    with Journal.open(config / ".provgit") as j:
        assert j.pending_count() == len(pending)
        assert j.distribution_error_count() == 0
        assert j.element_statuses()["cs1"]["status"] == st.STOPPED
        assert [e.element for e in j.events() if e.type == "element_down"] == ["cs1"]
        assert j.open_intents() == []
    # The element came back: the next run delivers the rest, nothing twice.
    store = _store(config)
    try:
        store.set_state("running")
    finally:
        store.close()
    again = _apply(config, _plan(config))
    assert again.ok and again.elements[0].counts()["ok"] == len(pending)


def test_an_element_not_observed_gets_its_queued_writes_as_pending_updates(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path / "config", users=2)
    assert _apply(config, _plan(config)).ok
    _config(config, users=3)  # one user more, while cs1 is down
    store = _store(config)
    try:
        store.set_state("offline")
        plan = _plan(config)
        calls = Calls()
        result = _apply(config, plan, calls)
    finally:
        store.close()

    (ep,) = plan.elements
    assert not ep.observed and ep.queued, ep
    (cs1,) = result.elements
    assert calls.sent == 0
    assert cs1.outcome == "unreachable" and cs1.status == st.STOPPED
    assert {op.status for op in cs1.operations} == {"pending"}
    assert {op.key for op in cs1.operations} == {op.key for op in ep.queued}
    with Journal.open(config / ".provgit") as j:
        assert {(p.collection, p.key) for p in j.pending("cs1")} == {
            (op.collection, op.key) for op in ep.queued
        }
        assert j.element_statuses()["cs1"]["state"] == "stopped"
        assert [e.element for e in j.events() if e.type == "element_down"] == ["cs1"]


def _full_journal(state: Path) -> Journal:
    """The journal, on a disk that takes no more intents (SQLite refuses the insert)."""
    j = Journal.open(state)
    with sqlite3.connect(state / "journal.sqlite") as db:
        db.execute(
            "CREATE TRIGGER IF NOT EXISTS disk_full BEFORE INSERT ON intents "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    return j


def test_intents_that_cannot_be_committed_stop_the_run_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path / "config", users=4, batch_size=2)
    plan = _plan(config)
    calls = Calls()
    with pytest.raises(sqlite3.Error, match="database or disk is full"):
        _apply(config, plan, calls, journal=_full_journal)

    assert calls.sent == 0
    assert _keys_on(config, "users") == set()
    with sqlite3.connect(config / ".provgit" / "journal.sqlite") as db:
        db.execute("DROP TRIGGER disk_full")
    with Journal.open(config / ".provgit") as j:
        assert j.open_intents() == []
        (run,) = j.runs(1)
        assert run["finished"] is None  # it did not claim to have finished
    # With room on the disk again, the next run applies everything.
    again = _apply(config, _plan(config))
    assert again.ok
    assert _keys_on(config, "users") == {f"u{n:02d}" for n in range(4)}


@pytest.fixture
def guarded_sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A simulator process that asks for a bearer token."""
    monkeypatch.setenv("SIM_TOKEN", "the-right-token-not-a-secret")
    (sim,) = start_sims(tmp_path, [("cs1", "mivb")], "--token-env", "SIM_TOKEN")
    try:
        yield sim
    finally:
        sim.stop()


def test_a_token_refused_at_apply_is_not_retried_and_keeps_every_write_pending(
    tmp_path: Path, guarded_sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    cs1 = f", driver: http, connection: {{url: '{guarded_sim.url}', token: {{env: CS1_TOKEN}}}}"
    config = _config(tmp_path / "config", users=3, cs1=cs1)
    monkeypatch.setenv("CS1_TOKEN", "the-right-token-not-a-secret")
    plan = _plan(config)
    (ep,) = plan.elements
    assert ep.observed
    # The token is revoked between plan and apply: every call is answered 401.
    monkeypatch.setenv("CS1_TOKEN", "a-revoked-token")
    calls = Calls()
    result = _apply(config, plan, calls)

    (e,) = [e for e in result.elements if e.element == "cs1"]
    # The element's state (its token is refused), not a distribution error per record.
    assert e.outcome == "unreachable" and e.state == "unauthorized"
    assert e.status == st.TOKEN_REFUSED
    assert {op.status for op in e.operations} == {"pending"}
    assert len(e.operations) == len(ep.operations)
    assert {op.error_type for op in e.operations} == {"unauthorized"}
    # One call, not retried; nothing more is sent once the token is refused.
    assert calls.sent == 1
    assert guarded_sim.records() == {}
    with Journal.open(config / ".provgit") as j:
        assert j.distribution_error_count() == 0
        assert j.pending_count() == len(ep.operations)
        assert j.element_statuses()["cs1"]["status"] == st.TOKEN_REFUSED
        assert [e.element for e in j.events() if e.type == "element_down"] == ["cs1"]
        assert j.open_intents() == []
    # The token is right again: the next run delivers every kept write.
    monkeypatch.setenv("CS1_TOKEN", "the-right-token-not-a-secret")
    again = _apply(config, _plan(config))
    assert again.ok, [(e.element, e.status) for e in again.elements]
    assert set(guarded_sim.records()["users"]) == {f"u{n:02d}" for n in range(3)}
    with Journal.open(config / ".provgit") as j:
        assert j.pending_count() == 0
        assert [e.element for e in j.events() if e.type == "element_up"] == ["cs1"]


def test_provgit_reads_no_kill_variable_only_the_launcher_does(tmp_path: Path) -> None:
    """The crash tests' kill point reaches provgit only through the write hook
    their launcher installs: the variable alone stops nothing."""
    config = _config(tmp_path / "config", users=2)
    env = {**os.environ, KILL_HOOK_ENV: "1"}
    ran = subprocess.run(
        [*PROVGIT, "reconcile", str(config)], capture_output=True, text=True, timeout=60, env=env
    )
    assert ran.returncode == 0, ran.stderr
    _config(config, users=4)
    killed = cli_killed_at("1", "reconcile", str(config))
    assert killed.code == -signal.SIGKILL, killed.err


@pytest.fixture(autouse=True)
def _no_state_dir_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)


def test_a_change_reverted_while_the_element_is_down_leaves_it_owed_nothing(
    tmp_path: Path,
) -> None:
    """cs1 down: a user more is queued as a pending update; the config is
    reverted and reconciled with cs1 still down: its (empty) queue replaces
    the old one, so nothing is left pending, and cs1 back gets the config of
    now (no u02)."""
    config = _config(tmp_path / "config", users=2)
    assert _apply(config, _plan(config)).ok
    assert _plan(config).elements[0].operations == ()  # read: what cs1 holds
    store = _store(config)
    try:
        store.set_state("offline")
        _config(config, users=3)
        _apply(config, _plan(config))
        with Journal.open(config / ".provgit") as j:
            assert ("users", "u02") in {(p.collection, p.key) for p in j.pending("cs1")}
        _config(config, users=2)
        plan = _plan(config)
        (ep,) = plan.elements
        assert not ep.observed and ep.queued == ()
        result = _apply(config, plan)
        assert result.elements[0].outcome == "unreachable"
        with Journal.open(config / ".provgit") as j:
            assert j.pending("cs1") == []
        store.set_state("running")
    finally:
        store.close()
    assert _apply(config, _plan(config)).ok
    assert "u02" not in _keys_on(config, "users")
    with Journal.open(config / ".provgit") as j:
        assert j.pending("cs1") == []
