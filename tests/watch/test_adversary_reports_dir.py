"""`reports.dir` comes from the repository, so whoever merges a change chooses
where the watcher writes files: it must stay in the config root or the state
directory. A merged commit pointing it at /etc-like places is refused (located,
the last good commit stays, nothing written there); a symbolic link planted on
the way is not followed; the operator's own directory comes from the
environment (PROVGIT_REPORTS_DIR). Real watcher, simulators and git repos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apply.helpers import Sim, cli_process, write_config

from .helpers import Watch, commit_all, make_repo, start_watch

NO_POLL = ["--fetch-seconds", "0", "--ref-check-seconds", "3600", "--resync-seconds", "0"]
NO_NOTES = "reports: {git_notes: false}\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reports", "where"),
    [
        ("reports: {{dir: '{outside}', git_notes: false}}\n", "provgit.yaml:7:11"),
        ("reports:\n  dir: .provgit/../../outside\n  git_notes: false\n", "provgit.yaml:8:3"),
    ],
    ids=["absolute", "climbing-out"],
)
def test_merged_commit_sending_reports_outside_is_refused_and_writes_nothing_there(
    sims: list[Sim], tmp_path: Path, watches: list[Watch], reports: str, where: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    bare, work = make_repo(tmp_path)
    write_config(work, sims, users=2, extra_settings=NO_NOTES)
    good = commit_all(work, "two users")
    state = tmp_path / "state"
    w = start_watch(["--repo", str(bare), "--state-dir", str(state), *NO_POLL])
    watches.append(w)
    assert w.wait_log("run_finished", timeout=60)["outcome"] == "Sync Completed"

    mark = w.mark()
    hostile = reports.format(outside=outside)
    write_config(work, sims, users=2, extra_settings=hostile, first_name="Eve")
    commit_all(work, "publish the status page")
    refused = w.wait_log("config_refused", after=mark, timeout=60)
    assert refused["first"].startswith(f"{where}: 'dir' must be a directory inside"), refused

    assert list(outside.iterdir()) == []
    doc = w.status()
    assert doc["watch"]["applied_commit"] == good
    assert {u["first_name"] for u in sims[0].records()["users"].values()} == {"Ann"}
    assert (state / "status" / "status.json").is_file()


@pytest.mark.slow
def test_reports_dir_through_a_planted_link_is_not_followed_and_the_run_says_so(
    sims: list[Sim], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", sims, users=2, extra_settings=NO_NOTES)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, state / "status")

    ran = cli_process("reconcile", str(config), "--state-dir", str(state))
    assert ran.code == 0, ran.out + ran.err
    assert "leads outside the config root and the state directory" in ran.out + ran.err
    assert list(outside.iterdir()) == []
    # The writes themselves went out: the refusal is about the report files only.
    assert len(sims[0].records()["users"]) >= 1


@pytest.mark.slow
def test_operator_reports_dir_from_the_environment_is_used(sims: list[Sim], tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", sims, users=2, extra_settings=NO_NOTES)
    published = tmp_path / "www" / "provgit"
    ran = cli_process(
        "reconcile",
        str(config),
        "--state-dir",
        str(tmp_path / "state"),
        env={"PROVGIT_REPORTS_DIR": str(published)},
    )
    assert ran.code == 0, ran.out + ran.err
    assert sorted(p.name for p in published.iterdir()) == [
        "feed.atom",
        "index.html",
        "status.json",
        "status.md",
    ]
    assert not (tmp_path / "state" / "status").exists()
