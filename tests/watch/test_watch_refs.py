"""`watch --repo` on a local repository sees new commits through its refs (refs.py):
no POST /reconcile, the fetch tick off and the safety re-read an hour away, so
only the file events on the git directory can start these runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apply.helpers import Sim, write_config
from provgit.watch.follower import GitFollower
from provgit.watch.refs import RefFilter

from .helpers import Watch, commit_all, git, make_repo, start_watch

# Only file events can start a run: no fetch tick, no webhook, no safety re-read
# within any test's time.
NO_POLL = ["--fetch-seconds", "0", "--ref-check-seconds", "3600", "--resync-seconds", "0"]


def _watch(repo: Path, state: Path, watches: list[Watch], *extra: str) -> Watch:
    w = start_watch(["--repo", str(repo), "--state-dir", str(state), *NO_POLL, *extra])
    watches.append(w)
    first = w.wait_log("run_finished", timeout=60)
    assert first["outcome"] == "Sync Completed", w.logs[-10:]
    return w


def _applied(w: Watch, commit: str, after: int) -> dict[str, Any]:
    """Wait until `commit` is applied (its git note written), and the status."""
    w.wait_log("git_note_written", lambda e: e["commit"] == commit, after=after, timeout=60)
    doc = w.status()
    assert doc["watch"]["applied_commit"] == commit
    assert doc["status"] == "Sync Completed"
    return doc


def _commit_here(work: Path, message: str) -> str:
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    return git(work, "rev-parse", "HEAD")


@pytest.mark.slow
def test_commit_in_work_tree_applied_from_ref_event_alone_last_of_two_quick_wins(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    write_config(work, sims, users=2)
    _commit_here(work, "two users")
    w = _watch(work, tmp_path / "state", watches)

    mark = w.mark()
    write_config(work, sims, users=2, first_name="Bea")
    c2 = _commit_here(work, "rename")
    _applied(w, c2, mark)
    assert sims[1].records()["users"]["user1"]["first_name"] == "Bea"
    ran = [e for e in w.logs[mark:] if e.get("event") == "run_finished"]
    assert ran and all(e["reason"] == "ref" for e in ran), ran

    # Two commits in quick succession: whichever batches the events fall in,
    # the last commit ends applied.
    mark = w.mark()
    write_config(work, sims, users=2, first_name="Cid")
    _commit_here(work, "third")
    write_config(work, sims, users=2, first_name="Dee")
    c4 = _commit_here(work, "fourth")
    _applied(w, c4, mark)
    assert sims[1].records()["users"]["user1"]["first_name"] == "Dee"


@pytest.mark.slow
def test_bare_repo_push_seen_after_gc_packed_the_ref_and_gc_alone_runs_nothing(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    bare, work = make_repo(tmp_path)
    write_config(work, sims, users=2)
    commit_all(work, "two users")
    w = _watch(bare, tmp_path / "state", watches)

    # gc packs the ref into packed-refs and deletes the loose file: the ref's
    # value is unchanged, so no run; the push after it writes a loose ref again.
    mark = w.mark()
    git(bare, "gc", "-q")
    git(bare, "pack-refs", "--all", "--prune")
    assert not (bare / "refs" / "heads" / "main").exists()
    write_config(work, sims, users=2, first_name="Bea")
    c2 = commit_all(work, "rename")
    _applied(w, c2, mark)
    assert sims[0].records()["users"]["user0"]["first_name"] == "Bea"
    ran = [e for e in w.logs[mark:] if e.get("event") == "run_finished"]
    assert [e["reason"] for e in ran] == ["ref"], ran

    # A ref moved only inside packed-refs (no loose file at all) is seen too.
    write_config(work, sims, users=2, first_name="Cid")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "third")
    c3 = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", "origin", "HEAD:refs/heads/staging")  # the objects, not main
    mark = w.mark()
    git(bare, "pack-refs", "--all", "--prune")
    packed = (bare / "packed-refs").read_text()
    (bare / "packed-refs").write_text(packed.replace(c2, c3))
    _applied(w, c3, mark)
    assert sims[0].records()["users"]["user0"]["first_name"] == "Cid"


@pytest.mark.slow
def test_force_push_to_an_older_commit_applies_that_commit_again(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    bare, work = make_repo(tmp_path)
    write_config(work, sims, users=2)
    c1 = commit_all(work, "two users")
    w = _watch(bare, tmp_path / "state", watches)
    mark = w.mark()
    write_config(work, sims, users=2, first_name="Bea")
    c2 = commit_all(work, "rename")
    _applied(w, c2, mark)

    # The branch is what is wanted: rolled back to c1, c1 is applied again
    # (the status names c1, and the elements hold c1's values).
    mark = w.mark()
    git(work, "push", "-q", "-f", "origin", f"{c1}:refs/heads/main")
    _applied(w, c1, mark)
    assert sims[0].records()["users"]["user0"]["first_name"] == "Ann"
    assert sims[1].records()["users"]["user1"]["first_name"] == "Ann"


@pytest.mark.slow
def test_linked_worktree_commit_on_its_branch_applied(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    main = tmp_path / "main"
    git(tmp_path, "init", "-q", "-b", "main", str(main))
    write_config(main, sims, users=2)
    _commit_here(main, "two users")
    linked = tmp_path / "linked"
    git(main, "worktree", "add", "-q", "-b", "live", str(linked))
    assert (linked / ".git").is_file()  # a `gitdir:` pointer, not a directory
    w = _watch(linked, tmp_path / "state", watches, "--ref", "live")

    mark = w.mark()
    write_config(linked, sims, users=2, first_name="Bea")
    c2 = _commit_here(linked, "rename on live")
    _applied(w, c2, mark)
    assert sims[1].records()["users"]["user1"]["first_name"] == "Bea"


def test_ref_filter_passes_ref_writes_only(tmp_path: Path) -> None:
    git_dir = tmp_path / "repo.git"
    keep = RefFilter([git_dir])
    for rel in ["HEAD", "packed-refs", "refs/heads/main", "refs/heads/main.lock"]:
        assert keep(None, str(git_dir / rel)), rel
    assert keep(None, str(git_dir / "worktrees" / "wt" / "HEAD"))
    for rel in [
        "objects/ab/cdef",
        "logs/HEAD",
        "index",
        "config",
        "worktrees/wt/index",
        "refs/notes/provgit",  # the watcher's own notes: no reason to read the ref
    ]:
        assert not keep(None, str(git_dir / rel)), rel
    assert not keep(None, str(tmp_path / "elsewhere" / "HEAD"))


def test_git_dirs_of_work_tree_linked_worktree_bare_and_url(tmp_path: Path) -> None:
    bare, work = make_repo(tmp_path)
    (work / "a").write_text("a")
    commit_all(work, "a")
    linked = tmp_path / "linked"
    git(work, "worktree", "add", "-q", "-b", "other", str(linked))

    def dirs(spec: str) -> list[Path]:
        return GitFollower(spec, "main", ".", tmp_path / "state").git_dirs()

    assert dirs(str(work)) == [(work / ".git").resolve()]
    assert dirs(str(bare)) == [bare.resolve()]
    # The linked worktree's own directory is inside the common one: one watch.
    assert dirs(str(linked)) == [(work / ".git").resolve()]
    # A URL has nothing on this machine to watch: the fetch tick polls it.
    assert dirs(f"file://{bare}") == []
