"""review12: the held safety (plan/held.py) falls back to the network's latest
only for a name with NO applied safety of its own. The journal keeps every
name's `applied_safety:<name>` forever, so a commit that renames the elements
back to names retired under a looser safety is held to that stale, loose one:
the rename is again a way around the safety. Real simulators."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from .helpers import Sim, cli, start_sims, users_on, write_config

STRICT = "safety:\n  max_deletes: {count: 2}\n  protected: [users/user5]\n"
LOOSE = "safety:\n  max_deletes: {count: 100000, percent: 100}\n  prune: [users]\n"
ALL = {f"user{n}" for n in range(8)}


def _renamed(sims: list[Sim]) -> list[Sim]:
    return [dataclasses.replace(s, name=f"{s.name}b") for s in sims]


def _everywhere(sims: list[Sim]) -> set[str]:
    return set().union(*(users_on(s) for s in sims))


def test_renaming_back_to_names_retired_under_a_looser_safety_does_not_drop_the_held_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    sims = start_sims(tmp_path, [("mcl", "micollab"), ("cs1", "mivb"), ("cs2", "mivb")])
    try:
        _back_to_retired_names(tmp_path / "config", sims)
    finally:
        for s in sims:
            s.stop()


def _back_to_retired_names(root: Path, sims: list[Sim]) -> None:
    # Long ago: these names, applied under a loose safety.
    write_config(root, sims, users=8, extra_settings=LOOSE, embedded_mcl=False)
    assert cli("reconcile", str(root)).code == 0
    # Then: the elements renamed and the safety tightened, applied.
    write_config(root, _renamed(sims), users=8, extra_settings=STRICT, embedded_mcl=False)
    assert cli("reconcile", str(root)).code == 0
    assert _everywhere(sims) == ALL

    # One commit: the old names back, the safety loosened, 7 users deleted
    # (user5, protected by the safety last applied, among them).
    write_config(root, sims, users=1, extra_settings=LOOSE, embedded_mcl=False)
    ran = cli("reconcile", str(root))
    assert _everywhere(sims) == ALL, (ran.code, ran.out)  # nothing deleted
    assert ran.code == 3, ran.out + ran.err
    doc = json.loads(cli("status", str(root), "--format", "json").out)
    for name in ("mcl", "cs1", "cs2"):
        assert doc["elements"][name]["status"] != "Sync Completed", doc["elements"][name]
