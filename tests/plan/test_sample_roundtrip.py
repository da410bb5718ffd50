"""Plan the whole sample config, apply it by hand through the drivers, plan again: empty."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from provgit.api.network import connect
from provgit.api.planning import PlanRun, plan_network
from provgit.drivers.base import WriteOp
from provgit.plan import PlanOptions
from provgit.secrets import with_values
from provgit.source import read_directory
from provgit.validate import validate_source

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "sample-config", config, ignore=shutil.ignore_patterns(".provgit"))
    for line in (ROOT / "scripts" / "demo-secrets.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
    return config


def _plan(config: Path, state_dir: Path) -> PlanRun:
    source = read_directory(config)
    valid = validate_source(source, state_dir / "cache")
    assert valid.ok, valid.diagnostics[:3]
    return asyncio.run(plan_network(valid.state, source, config, state_dir, PlanOptions()))


def _apply_by_hand(run: PlanRun, config: Path, state_dir: Path) -> int:
    network = connect(run.state, state_dir, config)

    async def go() -> int:
        n = 0
        for element in run.plan.elements:
            driver = network.drivers[element.element]
            for op in element.operations:
                if op.action == "delete":
                    write = WriteOp("delete", op.collection, op.key, None, op.if_revision)
                else:
                    assert op.fields is not None
                    write = WriteOp(
                        "put", op.collection, op.key, with_values(op.fields), op.if_revision
                    )
                result = await driver.write(write)
                assert result.ok, (element.element, op.collection, op.key, result.error)
                n += 1
        await network.close()
        return n

    return asyncio.run(go())


def test_sample_config_plan_apply_by_hand_then_plan_is_empty(sample: Path, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    first = _plan(sample, state_dir)
    assert {e.element for e in first.plan.elements} == set(first.state.elements)
    assert all(e.observed for e in first.plan.elements)
    applied = _apply_by_hand(first, sample, state_dir)
    assert applied == sum(first.plan.totals().values()) > 300

    second = _plan(sample, state_dir)
    leftovers = [
        (e.element, op.action, op.collection, op.key, op.changes)
        for e in second.plan.elements
        for op in e.operations
    ]
    assert leftovers == []
    assert not second.plan.has_changes and not second.plan.warnings


def test_sample_config_change_is_planned_on_exactly_the_records_it_touches(
    sample: Path, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    _apply_by_hand(_plan(sample, state_dir), sample, state_dir)
    finance = sample / "people" / "finance.yaml"
    finance.write_text(finance.read_text().replace("first_name: Julie", "first_name: Juliette"))
    plan = _plan(sample, state_dir).plan
    touched = {
        (e.element, op.action, op.collection, op.key) for e in plan.elements for op in e.operations
    }
    assert touched == {
        ("micollab1", "modify", "users", "jfortin"),
        ("mivb3", "modify", "users", "jfortin"),
    }
