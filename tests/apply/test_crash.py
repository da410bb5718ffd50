"""Crash safety: SIGKILL a real `provgit reconcile` at 20 points, then converge.

The kill comes from a write hook the test launcher installs
(tests/support/kill_after.py, through `cli_killed_at`): "N"
kills right after the Nth element write call returned, before its outcome is
journaled (the element has the write, the journal does not know); "N:before"
kills after the intents of the Nth call were committed, before it is sent.
"""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.kill_after import KILL_HOOK_ENV

from .helpers import Sim, cli, cli_killed_at, journal, read_store, start_sims, write_config

pytestmark = pytest.mark.slow

POINTS = [f"{n}{suffix}" for n in range(1, 11) for suffix in ("", ":before")]


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Sim]]:
    tmp = tmp_path_factory.mktemp("crash")
    started = start_sims(tmp, [("cs1", "mivb"), ("cs2", "mivb"), ("ivr1", "ivr")])
    try:
        yield started
    finally:
        for s in started:
            s.stop()


def _visible(records: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    return {
        c: {
            k: {f: v for f, v in fields.items() if not f.startswith("_")}
            for k, fields in keyed.items()
        }
        for c, keyed in records.items()
    }


def _everything(sims: list[Sim], config: Path) -> dict[str, Any]:
    out = {s.name: _visible(s.records()) for s in sims}
    out["mcl"] = _visible(read_store(config / ".provgit" / "elements" / "mcl.sqlite"))
    return out


def _fresh(sims: list[Sim], root: Path) -> Path:
    for s in sims:
        s.admin("/admin/reset")
    if root.exists():
        shutil.rmtree(root)
    return write_config(root, sims, users=6)


def test_sigkill_at_20_points_converges(
    sims: list[Sim], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    monkeypatch.delenv(KILL_HOOK_ENV, raising=False)
    # The reference: what a clean run leaves on every element.
    config = _fresh(sims, tmp_path / "ref")
    assert cli("reconcile", str(config)).code == 0
    expected = _everything(sims, config)
    assert sum(len(v) for c in expected.values() for v in c.values()) > 25

    exercised_open_intents = 0
    for point in POINTS:
        config = _fresh(sims, tmp_path / f"run-{point.replace(':', '-')}")
        killed = cli_killed_at(point, "reconcile", str(config))
        assert killed.code == -signal.SIGKILL, (
            point,
            killed.code,
            killed.err[-2000:],
        )
        with journal(config / ".provgit") as j:
            exercised_open_intents += bool(j.open_intents())
        recovered = cli("reconcile", str(config), "--format", "json")
        assert recovered.code == 0, (point, recovered.out)
        assert json.loads(recovered.out)["status"] == "Sync Completed"
        # Exactly the desired records everywhere: nothing lost, nothing doubled.
        assert _everything(sims, config) == expected, point
        again = cli("reconcile", str(config), "--format", "json")
        doc = json.loads(again.out)
        assert again.code == 0 and doc["counts"]["ok"] == 0, (point, again.out)
        assert {e["status"] for e in doc["elements"]} == {"Sync Completed"}
        with journal(config / ".provgit") as j:
            assert j.open_intents() == [], point
            assert j.distribution_error_count() == 0, point
            assert j.pending_count() == 0, point
    # Every "after" point leaves a write the journal had not confirmed.
    assert exercised_open_intents >= 10
