"""`watch --repo`: a pushed commit cannot loosen the safety that guards its
own deletes (plan/held.py). The watcher plans with its own session, not
`provgit plan`: the apply engine holds the plan to the last applied safety."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apply.helpers import Sim, read_store, users_on, write_config

from .helpers import Watch, commit_all, make_repo, start_watch

STRICT = "safety:\n  max_deletes: {count: 2}\n  protected: [users/user5]\n"
LOOSE = "safety:\n  max_deletes: {count: 100000, percent: 100}\n"
ALL = {f"user{n}" for n in range(8)}
NO_POLL = ["--fetch-seconds", "0", "--ref-check-seconds", "3600", "--resync-seconds", "0"]


@pytest.mark.slow
def test_a_pushed_commit_that_loosens_and_deletes_is_refused_and_nothing_deleted(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    bare, work = make_repo(tmp_path)
    state = tmp_path / "state"
    write_config(work, sims, users=8, extra_settings=STRICT)
    first = commit_all(work, "eight users, user5 protected")
    w = start_watch(["--repo", str(bare), "--state-dir", str(state), *NO_POLL])
    watches.append(w)
    w.wait_log("sync_result", lambda e: e["commit"] == first, timeout=60)

    def everywhere() -> set[str]:
        mcl = set(read_store(state / "elements" / "mcl.sqlite").get("users", {}))
        return mcl | users_on(sims[0]) | users_on(sims[1])

    assert everywhere() == ALL

    mark = w.mark()
    write_config(work, sims, users=1, extra_settings=LOOSE)
    bad = commit_all(work, "limit raised, protection dropped, 7 users deleted")
    done = w.wait_log("sync_result", lambda e: e["commit"] == bad, after=mark, timeout=60)
    assert done["refusal"] is not None, done
    assert everywhere() == ALL
    doc = w.status()
    assert doc["status"] != "Sync Completed"
    detail = json.dumps(doc["elements"]["cs2"])
    assert "users/user5 is protected by the last applied provgit.yaml" in detail, detail
    assert f"commit {first[:12]}" in detail
    assert "7 deletes (more than 2)" in detail

    # The loosening alone, then the deletes: each applied in turn.
    mark = w.mark()
    write_config(work, sims, users=8, extra_settings=LOOSE)
    alone = commit_all(work, "the loosening alone")
    done = w.wait_log("sync_result", lambda e: e["commit"] == alone, after=mark, timeout=60)
    assert done["refusal"] is None, done
    mark = w.mark()
    write_config(work, sims, users=1, extra_settings=LOOSE)
    deletes = commit_all(work, "the deletes")
    done = w.wait_log("sync_result", lambda e: e["commit"] == deletes, after=mark, timeout=60)
    assert done["refusal"] is None, done
    assert everywhere() == {"user0"}
    assert w.status()["status"] == "Sync Completed"
