"""Proposed drift stays "Drift proposed" everywhere the status is told (`provgit
status`, status.json, the page, the metrics), across a watcher restart, until
the branch is merged or closed; a closed branch means the config wins.

Real watcher processes following a real git repository, real simulators; the
out-of-band edit goes through the simulator's admin endpoint, the branch is
deleted on the remote with plain git, as a reviewer would close it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apply.helpers import Sim, cli_process, wait_for, write_config

from .helpers import Watch, commit_all, git, make_repo, start_watch

pytestmark = pytest.mark.slow

EDITED = "Changed by hand"


def _watch(bare: Path, state: Path, watches: list[Watch], resync: str = "0.3") -> Watch:
    w = start_watch(
        [
            "--repo",
            f"file://{bare}",
            "--state-dir",
            str(state),
            "--fetch-seconds",
            "0.2",
            "--resync-seconds",
            resync,
            "--drift",
            "propose",
        ]
    )
    watches.append(w)
    return w


def _cos7(doc: dict[str, Any]) -> dict[str, Any]:
    return next(
        r for r in doc["resources"] if (r["kind"], r["resource"]) == ("classes_of_service", "7")
    )


def _proposed_metric(w: Watch) -> dict[str, float]:
    return {
        str(s.labels.get("element")): s.value
        for f in text_string_to_metric_families(w.get("/metrics")[1])
        if f.name == "provgit_drift_proposed_records"
        for s in f.samples
    }


def _status_cli(work: Path, state: Path) -> tuple[int, dict[str, Any]]:
    ran = cli_process("status", str(work), "--state-dir", str(state), "--format", "json")
    return ran.code, json.loads(ran.out)


def _proposed(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> tuple[Watch, Path, Path, Path, str]:
    cs1 = sims[0]
    bare, work = make_repo(tmp_path)
    write_config(work, sims, users=2)
    commit_all(work, "config")
    state = tmp_path / "state"
    w = _watch(bare, state, watches)
    first = w.wait_log("run_finished", timeout=60)
    assert first["outcome"] == "Sync Completed", w.logs[-10:]
    mark = w.mark()
    cs1.admin(
        "/admin/edit",
        {"op": "put", "collection": "cos", "key": "7", "fields": {"number": 7, "comment": EDITED}},
    )
    branch = w.wait_log("drift_proposed", after=mark, timeout=30)["branch"]
    return w, bare, work, state, branch


def _assert_proposed_everywhere(doc: dict[str, Any], branch: str) -> None:
    cell = _cos7(doc)["elements"]["cs1"]
    assert (cell["state"], cell["status"]) == ("drift_proposed", "Drift proposed"), cell
    assert _cos7(doc)["status"] != "Sync Completed"
    assert doc["in_sync"] is False and doc["status"] != "Sync Completed"
    assert doc["counts"]["drift_proposed"] == 1, doc["counts"]
    assert [d["branch"] for d in doc["drift_proposed"]] == [branch]


def test_proposed_drift_reads_drift_proposed_in_status_cli_and_after_a_watcher_restart(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1 = sims[0]
    w, bare, work, state, branch = _proposed(sims, tmp_path, watches)
    _assert_proposed_everywhere(w.status(), branch)
    code, doc = _status_cli(work, state)
    _assert_proposed_everywhere(doc, branch)
    assert code == 4

    # Stopped: the status on disk still says the drift is proposed.
    assert w.stop() == 0
    code, doc = _status_cli(work, state)
    _assert_proposed_everywhere(doc, branch)
    assert code == 4

    # Restarted with no resync: the startup run neither overwrites the proposed
    # record nor reads it as Sync Completed; metrics are right from startup.
    w = _watch(bare, state, watches, resync="0")
    first = w.wait_log("run_finished", timeout=60)
    assert first["outcome"] != "Sync Completed", first
    assert cs1.records()["cos"]["7"]["comment"] == EDITED
    _assert_proposed_everywhere(w.status(), branch)
    assert _proposed_metric(w) == {"cs1": 1.0}
    code, page, _ = w.get("/")
    assert code == 200 and "Drift proposed" in page
    code, doc = _status_cli(work, state)
    _assert_proposed_everywhere(doc, branch)
    assert git(bare, "rev-parse", "--verify", "-q", f"refs/heads/{branch}")


def test_closing_a_drift_branch_unmerged_rejects_it_and_the_config_wins(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1 = sims[0]
    w, bare, work, state, branch = _proposed(sims, tmp_path, watches)
    assert cs1.records()["cos"]["7"]["comment"] == EDITED
    proposed_before = len(w.events("drift_proposed"))

    # A reviewer closes the pull request and deletes the branch on the remote.
    mark = w.mark()
    git(bare, "branch", "-D", branch)
    closed = w.wait_log("drift_proposal_closed", after=mark, timeout=30)
    assert closed["branch"] == branch and closed["elements"] == ["cs1"], closed
    # The config wins: provgit corrects the element, the hold is released.
    assert wait_for(lambda: cs1.records()["cos"]["7"]["comment"] == "Sales", 30)
    assert wait_for(lambda: w.status()["status"] == "Sync Completed", 30), w.status()["counts"]
    doc = w.status()
    assert doc["drift_proposed"] == [] and doc["counts"]["drift_proposed"] == 0
    assert _cos7(doc)["elements"]["cs1"]["state"] == "completed"
    assert _proposed_metric(w) == {"cs1": 0.0}
    rejected = [e for e in doc["events"] if e["type"] == "drift_rejected"]
    assert len(rejected) == 1 and branch in rejected[0]["message"], doc["events"]
    assert any(e["type"] == "drift" and "corrected" in e["message"] for e in doc["events"])
    # Not proposed again, not pushed back.
    after = w.mark()
    w.wait_logs("run_finished", 2, lambda e: "resync" in e["reason"], after=after, timeout=30)
    assert len(w.events("drift_proposed")) == proposed_before
    assert git(bare, "for-each-ref", "refs/heads/provgit/drift/") == ""
    assert cs1.records()["cos"]["7"]["comment"] == "Sales"

    # A restart neither resurrects the branch nor the hold.
    assert w.stop() == 0
    w = _watch(bare, state, watches)
    first = w.wait_log("run_finished", timeout=60)
    assert first["outcome"] in ("Sync Completed", "in sync"), first
    assert git(bare, "for-each-ref", "refs/heads/provgit/drift/") == ""
    code, doc2 = _status_cli(work, state)
    assert (code, doc2["status"]) == (0, "Sync Completed"), doc2["counts"]


def test_an_unpushed_drift_branch_is_not_read_as_closed(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    """A branch whose push failed is missing on the remote without anyone
    closing it: the drift stays held and proposed."""
    cs1 = sims[0]
    bare, work = make_repo(tmp_path)
    write_config(work, sims, users=2)
    commit_all(work, "config")
    state = tmp_path / "state"
    w = _watch(bare, state, watches)
    assert w.wait_log("run_finished", timeout=60)["outcome"] == "Sync Completed"
    # Pushes refused from now on (a hook on the remote), fetches still work.
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    mark = w.mark()
    cs1.admin(
        "/admin/edit",
        {"op": "put", "collection": "cos", "key": "7", "fields": {"number": 7, "comment": EDITED}},
    )
    proposed = w.wait_log("drift_proposed", after=mark, timeout=30)
    assert proposed["pushed"] is False
    again = w.mark()
    w.wait_logs("run_finished", 3, lambda e: "resync" in e["reason"], after=again, timeout=30)
    assert not w.events("drift_proposal_closed")
    assert cs1.records()["cos"]["7"]["comment"] == EDITED
    _assert_proposed_everywhere(w.status(), proposed["branch"])
