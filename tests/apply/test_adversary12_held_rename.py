"""The held safety (plan/held.py) is kept per element name: renaming the
elements in the commit that loosens the safety and deletes made them new
names with no safety applied, so the config's loosened one alone was in force
and every delete went out. An element with no safety of its own applied is now
held to the one the network's latest admitted run applied, and every element
to that one as well as its own (a name retired under looser rules and used
again is no way around it either). Real simulators."""

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


def test_renaming_the_elements_in_the_loosening_commit_does_not_drop_the_held_safety(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    sims = start_sims(tmp_path, [("mcl", "micollab"), ("cs1", "mivb"), ("cs2", "mivb")])
    try:
        _renamed_and_loosened(tmp_path / "config", sims)
    finally:
        for s in sims:
            s.stop()


def _renamed_and_loosened(root: Path, sims: list[Sim]) -> None:
    write_config(root, sims, users=8, extra_settings=STRICT, embedded_mcl=False)
    assert cli("reconcile", str(root)).code == 0
    assert _everywhere(sims) == ALL

    # One commit: the same elements under new names, the limit raised, the
    # protection dropped, users pruned, 7 users deleted.
    write_config(root, _renamed(sims), users=1, extra_settings=LOOSE, embedded_mcl=False)
    ran = cli("reconcile", str(root))
    assert ran.code == 3, ran.out + ran.err
    assert "users/user5 is protected by the last applied provgit.yaml" in ran.out, ran.out
    assert _everywhere(sims) == ALL  # nothing deleted
    doc = json.loads(cli("status", str(root), "--format", "json").out)
    for name in ("mclb", "cs1b", "cs2b"):
        assert doc["elements"][name]["status"] != "Sync Completed", doc["elements"][name]

    # The renaming (and loosening) alone, applied; then the deletes go out.
    write_config(root, _renamed(sims), users=8, extra_settings=LOOSE, embedded_mcl=False)
    assert cli("reconcile", str(root)).code == 0
    write_config(root, _renamed(sims), users=1, extra_settings=LOOSE, embedded_mcl=False)
    again = cli("reconcile", str(root))
    assert again.code == 0, again.out + again.err
    assert _everywhere(sims) == {"user0"}


# review12: the journal keeps every name's applied safety; renaming back to names
# retired under a looser safety must not pick that stale one over the latest.
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
