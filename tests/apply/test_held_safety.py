"""A commit cannot loosen the safety that guards its own deletes (plan/held.py).

The safety in force on an element is the stricter of the one its last run
was applied under (kept in the journal) and the config's: one commit that
raises max_deletes, drops a record from `protected` and deletes it is
refused, nothing deleted, and the status says why; the loosening committed
alone and applied, the deletes go out next. A tightening is in force at once.
Real simulators (cs1, cs2) and the embedded MiCollab (mcl).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import Sim, cli, read_store, start_sims, users_on, write_config

STRICT = "safety:\n  max_deletes: {count: 2}\n  protected: [users/user5]\n"
LOOSE = "safety:\n  max_deletes: {count: 100000, percent: 100}\n"
ALL = {f"user{n}" for n in range(8)}


def _mcl_users(root: Path) -> set[str]:
    return set(read_store(root / ".provgit" / "elements" / "mcl.sqlite").get("users", {}))


def _everywhere(root: Path, sims: list[Sim]) -> set[str]:
    return _mcl_users(root) | users_on(sims[0]) | users_on(sims[1])


def _reconcile(root: Path, code: int) -> str:
    r = cli("reconcile", str(root))
    assert r.code == code, r.out + r.err
    return r.out + r.err


def _in_sync(root: Path, sims: list[Sim], settings: str) -> None:
    write_config(root, sims, users=8, extra_settings=settings)
    _reconcile(root, 0)
    assert _everywhere(root, sims) == ALL


def _refused_for_safety(root: Path, sims: list[Sim], why: str) -> None:
    """Nothing deleted anywhere, and the status names the reason."""
    assert _everywhere(root, sims) == ALL
    shown = cli("status", str(root), "--format", "json")
    doc = json.loads(shown.out)
    mcl = doc["elements"]["mcl"]
    assert mcl["status"] != "Sync Completed", mcl
    assert why in json.dumps(mcl), mcl


def test_a_commit_that_loosens_and_deletes_is_refused_until_the_loosening_was_applied(
    sims: list[Sim], tmp_path: Path
) -> None:
    root = tmp_path / "config"
    _in_sync(root, sims, STRICT)

    # One commit: the limit raised, the protection dropped, 7 users deleted.
    write_config(root, sims, users=1, extra_settings=LOOSE)
    shown = cli("plan", str(root))
    assert "loosens the last applied provgit.yaml" in shown.out, shown.out
    assert "protected no longer lists users/user5" in shown.out
    out = _reconcile(root, 3)
    assert "users/user5 is protected by the last applied provgit.yaml" in out, out
    assert "7 deletes (more than 2); pass --allow-mass-delete to allow" in out
    assert "apply that change alone first, then the rest" in out
    _refused_for_safety(root, sims, "users/user5 is protected by the last applied provgit.yaml")
    # Refused again: a refused run does not make its safety the applied one.
    _reconcile(root, 3)
    assert _everywhere(root, sims) == ALL

    # The explicit way out for the limit: --allow-mass-delete (the protection stays).
    out = cli("reconcile", str(root), "--allow-mass-delete").out
    assert "users/user5 is protected" in out and _everywhere(root, sims) == ALL

    # The loosening alone, applied; then the deletes go out.
    write_config(root, sims, users=8, extra_settings=LOOSE)
    _reconcile(root, 0)
    write_config(root, sims, users=1, extra_settings=LOOSE)
    _reconcile(root, 0)
    assert _everywhere(root, sims) == {"user0"}


def test_a_tightening_is_in_force_at_once_and_held_against_the_next_commit(
    sims: list[Sim], tmp_path: Path
) -> None:
    root = tmp_path / "config"
    _in_sync(root, sims, LOOSE)
    # Tightened with nothing to delete: applied, and from now on the limit.
    write_config(root, sims, users=8, extra_settings=STRICT)
    _reconcile(root, 0)
    # Loosened back in the commit that deletes: the tightened limit holds.
    write_config(root, sims, users=1, extra_settings=LOOSE)
    out = _reconcile(root, 3)
    assert "7 deletes (more than 2)" in out and "pass --allow-mass-delete" in out, out
    _refused_for_safety(root, sims, "7 deletes (more than 2)")


def test_a_saved_plan_made_under_a_loosened_config_is_refused_at_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CI shape: the plan job has a state directory of its own (no
    journal, so no applied safety to hold it to); the apply job's journal
    has the stricter safety, and apply holds the plan to it. Every element
    simulated: an embedded one's records live in the state directory."""
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    monkeypatch.setenv("PROVGIT_SECRET_KEY", "the-network-key-5e11a7c0")
    started = start_sims(tmp_path, [("mcl", "micollab"), ("cs1", "mivb"), ("cs2", "mivb")])
    try:
        _saved_plan_refused(tmp_path, started)
    finally:
        for s in started:
            s.stop()


def _saved_plan_refused(tmp_path: Path, sims: list[Sim]) -> None:
    key = "secret_key: {env: PROVGIT_SECRET_KEY}\n"
    root, apply_job = tmp_path / "config", str(tmp_path / "apply-job")
    write_config(root, sims, users=8, embedded_mcl=False, extra_settings=key + STRICT)
    assert cli("reconcile", str(root), "--state-dir", apply_job).code == 0
    write_config(root, sims, users=1, embedded_mcl=False, extra_settings=key + LOOSE)
    plan = tmp_path / "plan.json"
    made = cli("plan", str(root), "--out", str(plan), "--state-dir", str(tmp_path / "plan-job"))
    assert made.code == 0, made.out + made.err
    assert not any(e["refusal"] for e in json.loads(plan.read_text())["elements"])

    r = cli("apply", str(plan), "--config", str(root), "--yes", "--state-dir", apply_job)
    assert r.code == 3, r.out + r.err
    assert "users/user5 is protected by the last applied provgit.yaml" in r.out + r.err
    assert set(sims[0].records()["users"]) == ALL
    assert users_on(sims[1]) | users_on(sims[2]) == ALL


def test_an_element_down_when_the_loosening_was_applied_keeps_the_old_safety(
    sims: list[Sim], tmp_path: Path
) -> None:
    root = tmp_path / "config"
    _in_sync(root, sims, STRICT)
    cs1, cs2 = sims
    on_cs2 = users_on(cs2)
    assert len(on_cs2 - {"user0"}) > 2, on_cs2  # past STRICT's 2 deletes there
    # The loosening alone, applied while cs2 is down: only the others take it.
    cs2.stop()
    write_config(root, sims, users=8, extra_settings=LOOSE)
    assert cli("reconcile", str(root)).code != 0  # cs2 unreachable: not a clean run
    back = start_sims(tmp_path, [("cs2", "mivb")])[0]  # its own database, a new port
    try:
        # The deletes: cs2 is held to the old safety, so the run is refused
        # (as any element's refusal refuses it), nothing deleted anywhere.
        write_config(root, [cs1, back], users=1, extra_settings=LOOSE)
        out = _reconcile(root, 3)
        assert "refused for cs2: users/user5 is protected by the last applied" in out, out
        assert "refused for mcl" not in out and "refused for cs1" not in out
        assert users_on(cs1) | users_on(back) | _mcl_users(root) == ALL
        # --partial: out where the loosening was applied, still refused on cs2.
        partial = cli("reconcile", str(root), "--partial")
        assert partial.code == 4, partial.out + partial.err  # applied, one element refused
        doc = json.loads(cli("status", str(root), "--format", "json").out)
        assert doc["elements"]["cs2"]["status"] != "Sync Completed", doc["elements"]["cs2"]
        assert "protected by the last applied" in json.dumps(doc["elements"]["cs2"])
        assert users_on(back) == on_cs2  # nothing deleted there
        assert users_on(cs1) <= {"user0"} and _mcl_users(root) == {"user0"}
    finally:
        back.stop()
