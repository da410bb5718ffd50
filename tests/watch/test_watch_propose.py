"""`provgit watch --drift propose`: an out-of-band edit becomes a drift branch.

Real watcher processes following a real git repository, real simulators; the
out-of-band edit goes through the simulator's admin endpoint (the element's
own form), the merge through plain git, as a person would do them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apply.helpers import Sim, cli_process, wait_for, write_config

from .helpers import Watch, commit_all, git, make_repo, start_watch

pytestmark = pytest.mark.slow

COS_LINE = "  - {number: 7, comment: Sales}"
EDITED = "Changed by hand"


def _edit_cos(sim: Sim, comment: str) -> None:
    sim.admin(
        "/admin/edit",
        {"op": "put", "collection": "cos", "key": "7", "fields": {"number": 7, "comment": comment}},
    )


def _proposed_metric(w: Watch) -> dict[str, float]:
    return {
        str(s.labels.get("element")): s.value
        for f in text_string_to_metric_families(w.get("/metrics")[1])
        if f.name == "provgit_drift_proposed_records"
        for s in f.samples
    }


def _cos7(doc: dict[str, Any]) -> dict[str, Any]:
    return next(
        r for r in doc["resources"] if (r["kind"], r["resource"]) == ("classes_of_service", "7")
    )


def _drift_branches(repo: Path) -> list[str]:
    out = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/provgit/drift/")
    return out.split()


def _watch(bare: Path, state: Path, watches: list[Watch]) -> Watch:
    w = start_watch(
        [
            "--repo",
            f"file://{bare}",  # a URL: cloned into the state dir, `origin` to push to
            "--state-dir",
            str(state),
            "--fetch-seconds",
            "0.2",
            "--resync-seconds",
            "0.3",
            "--drift",
            "propose",
        ]
    )
    watches.append(w)
    return w


def test_out_of_band_edit_is_proposed_on_a_branch_and_merging_it_shares_it(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1, cs2 = sims
    bare, work = make_repo(tmp_path)
    write_config(work, sims, users=2)
    base = commit_all(work, "config")
    state = tmp_path / "state"
    w = _watch(bare, state, watches)
    first = w.wait_log("run_finished", timeout=60)
    assert first["outcome"] == "Sync Completed", w.logs[-10:]

    mark = w.mark()
    _edit_cos(cs1, EDITED)  # a reach-through COS edit on one call server
    proposed = w.wait_log("drift_proposed", after=mark, timeout=30)
    branch = proposed["branch"]
    assert branch.startswith("provgit/drift/cs1-"), branch
    assert proposed["created"] is True and proposed["pushed"] is True
    assert proposed["elements"] == ["cs1"]

    # The branch is on the config repository's remote, one commit on the base,
    # naming element, form, record and field: before -> after.
    assert _drift_branches(bare) == [branch]
    assert git(bare, "rev-parse", f"{branch}^") == base
    message = git(bare, "log", "-1", "--format=%B", branch)
    assert "cs1" in message.splitlines()[0]
    assert f'cs1 Class of Service Options 7, comment: "Sales" -> "{EDITED}"' in message
    diff = git(bare, "diff", "--unified=0", base, branch)
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in "---+++"]
    assert changed == [f"-{COS_LINE}", f"+  - {{number: 7, comment: {EDITED}}}"], diff

    # The element keeps what was done there; the other call server is untouched.
    assert cs1.records()["cos"]["7"]["comment"] == EDITED
    assert cs2.records()["cos"]["7"]["comment"] == "Sales"
    doc = w.status()
    cos7 = _cos7(doc)["elements"]
    assert cos7["cs1"]["state"] == "drift_proposed" and cos7["cs1"]["branch"] == branch
    assert cos7["cs1"]["status"] == "Drift proposed"
    assert cos7["cs2"]["state"] == "completed"
    assert doc["elements"]["cs1"]["status"] == "Drift proposed"
    assert doc["drift_proposed"] == [
        {"element": "cs1", "collection": "cos", "key": "7", "branch": branch, "url": None}
    ]
    assert doc["counts"]["drift_proposed"] == 1
    assert doc["watch"]["drift"]["proposed"]["branch"] == branch
    code, feed, _ = w.get("/feed.atom")
    assert code == 200 and "Drift proposed: cs1" in feed and branch in feed
    assert _proposed_metric(w) == {"cs1": 1.0}
    code, page, _ = w.get("/")
    assert code == 200 and "Drift proposed" in page

    # Proposed once: later resyncs find the same drift and say nothing new.
    again = w.mark()
    w.wait_logs("run_finished", 2, lambda e: "resync" in e["reason"], after=again, timeout=30)
    assert len(w.events("drift_proposed")) == 1
    assert cs1.records()["cos"]["7"]["comment"] == EDITED
    # ... nor after a restart: the branch named by the drift exists already.
    assert w.stop() == 0
    w = _watch(bare, state, watches)
    seen = w.wait_log("drift_proposed", timeout=60)
    assert seen["branch"] == branch and seen["created"] is False
    assert _drift_branches(bare) == [branch]
    events = [e for e in w.status()["events"] if e["type"] == "drift_proposed"]
    assert len(events) == 1 and branch in events[0]["message"]

    # A person merges the branch: the change reaches every element sharing the record.
    git(work, "fetch", "-q", "origin")
    git(work, "merge", "-q", "--ff-only", f"origin/{branch}")
    pushed = w.mark()
    git(work, "push", "-q", "origin", "HEAD:main")
    merged = git(work, "rev-parse", "HEAD")
    assert wait_for(lambda: cs2.records()["cos"]["7"]["comment"] == EDITED, 30)
    assert wait_for(lambda: w.status()["watch"]["applied_commit"] == merged, 30)
    assert wait_for(lambda: w.status()["status"] == "Sync Completed", 30), w.status()["counts"]
    # The run that applied the merge says so before it ends (reports, notes
    # follow): the resync looked at below is one that starts after its end.
    applied = w.wait_log("sync_result", lambda e: e.get("commit") == merged, after=pushed)
    w.wait_log("run_finished", after=w.logs.index(applied, pushed))
    doc = w.status()
    assert doc["drift_proposed"] == [] and doc["counts"]["drift_proposed"] == 0
    assert _cos7(doc)["status"] == "Sync Completed"
    assert cs1.records()["cos"]["7"]["comment"] == EDITED
    assert _proposed_metric(w) == {"cs1": 0.0}
    # Nothing left to do: a resync after the merge writes nothing and finds no drift.
    after = w.mark()
    resync = w.wait_log("run_finished", lambda e: "resync" in e["reason"], after=after)
    assert resync["outcome"] == "in sync", resync
    assert w.status()["watch"]["drift"] is None


def test_propose_without_a_remote_keeps_the_branch_in_the_repository(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1, _ = sims
    bare, work = make_repo(tmp_path)
    write_config(work, sims, users=2)
    base = commit_all(work, "config")
    w = start_watch(
        [
            "--repo",
            str(bare),  # a local path without `origin`: the branch is made there, no push
            "--state-dir",
            str(tmp_path / "state"),
            "--fetch-seconds",
            "0",
            "--resync-seconds",
            "0.3",
            "--drift",
            "propose",
        ]
    )
    watches.append(w)
    w.wait_log("run_finished", timeout=60)
    mark = w.mark()
    _edit_cos(cs1, EDITED)
    proposed = w.wait_log("drift_proposed", after=mark, timeout=30)
    assert proposed["created"] is True and proposed["pushed"] is False
    assert _drift_branches(bare) == [proposed["branch"]]
    assert git(bare, "rev-parse", "main") == base  # the followed ref is left alone
    events = [e for e in w.status()["events"] if e["type"] == "drift_proposed"]
    assert "no remote" in events[0]["message"]
    assert not w.events("drift_push_failed")


def test_propose_needs_a_repository(tmp_path: Path, sims: list[Sim]) -> None:
    config = write_config(tmp_path / "config", sims, users=1)
    r = cli_process("watch", str(config), "--drift", "propose")
    assert r.code == 1, (r.out, r.err)
    assert "--drift propose" in r.err and "--repo" in r.err


def test_a_failed_push_is_logged_and_retried_and_the_watcher_goes_on(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1, _ = sims
    bare, work = make_repo(tmp_path)
    write_config(work, sims, users=2)
    commit_all(work, "config")
    w = _watch(bare, tmp_path / "state", watches)
    w.wait_log("run_finished", timeout=60)
    away = bare.with_name("away.git")
    bare.rename(away)  # the remote is gone (down, moved, refusing)

    mark = w.mark()
    _edit_cos(cs1, EDITED)
    failed = w.wait_log("drift_push_failed", after=mark, timeout=30)
    proposed = w.wait_log("drift_proposed", after=mark, timeout=30)
    assert proposed["pushed"] is False and failed["branch"] == proposed["branch"]
    events = [e for e in w.status()["events"] if e["type"] == "drift_proposed"]
    assert "push to origin failed" in events[0]["message"]
    # Not fatal: later runs go on (and try the push again).
    w.wait_logs(
        "drift_push_failed", 2, lambda e: e["branch"] == proposed["branch"], after=mark, timeout=30
    )
    assert cs1.records()["cos"]["7"]["comment"] == EDITED

    away.rename(bare)  # the remote is back: the next run's retry lands
    pushed = w.wait_log("drift_branch_pushed", after=mark, timeout=30)
    assert pushed["branch"] == proposed["branch"]
    assert _drift_branches(bare) == [proposed["branch"]]
    assert len(w.events("drift_proposed")) == 1
