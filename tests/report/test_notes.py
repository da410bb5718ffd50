"""The git note on the applied commit, read back with plain git."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from provgit.publish.notes import git_source

from .conftest import ASMITH, Lab, git, reconcile, write_config


def note(repo: Path, commit: str = "HEAD") -> dict[str, Any]:
    return json.loads(git(repo, "notes", "--ref=provgit", "show", commit))


def test_note_on_the_applied_commit(lab: Lab) -> None:
    body = note(lab.root, lab.commit)
    assert body["format"] == "provgit.note/1" and body["network"] == "lab"
    assert body["status"] == "Sync Incomplete" and body["dirty"] is False
    assert body["elements"] == {
        "mcl": "Sync Completed",
        "mivb1": "Sync Completed",
        "mivb2": "Failed mivb2",
        "ivr1": "Sync Completed",
    }
    assert body["distribution_errors"] == 1 and body["alarm"] == "warning"
    # The first run noted the first commit: each commit says what it did.
    first = git(lab.root, "rev-list", "--max-parents=0", "HEAD").strip()
    assert note(lab.root, first)["status"] == "Sync Completed"
    log = git(lab.root, "log", "--notes=provgit", "--format=%H%n%N")
    assert log.count('"format": "provgit.note/1"') == 2


def new_repo(tmp_path: Path, extra: str = "") -> Path:
    root = write_config(tmp_path / "config", extra=extra)
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text(".provgit/\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "one")
    return root


def test_rerun_replaces_the_note_and_dirty_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORT_TEST_PIN", "1234")
    root = new_repo(tmp_path)
    reconcile(root)
    first = note(root)
    reconcile(root)
    second = note(root)
    assert second["run"]["id"] == first["run"]["id"] + 1
    # One note per commit; the notes ref keeps the replaced one in its history.
    assert len(git(root, "notes", "--ref=provgit", "list").splitlines()) == 1
    assert len(git(root, "rev-list", "refs/notes/provgit").splitlines()) == 2
    # An uncommitted change to the config: noted on HEAD, saying so.
    write_config(root, users=ASMITH)
    written = reconcile(root)
    body = note(root)
    assert body["dirty"] is True and "uncommitted" in str(body["note"])
    assert written.document["source"]["dirty"] is True


def test_state_and_reports_inside_the_config_are_not_dirt(tmp_path: Path) -> None:
    root = new_repo(tmp_path)
    (root / ".gitignore").unlink()  # .provgit untracked, not ignored
    git(root, "commit", "-q", "-am", "no ignore")
    (root / ".provgit" / "x").parent.mkdir()
    (root / ".provgit" / "x").write_text("state")
    (root / "status").mkdir()
    (root / "status" / "index.html").write_text("report")
    found = git_source(root, ignore=[root / "status"])
    assert found is not None and not found.dirty and found.path == "."
    (root / "extra.yaml").write_text("users: []\n")
    found = git_source(root, ignore=[root / "status"])
    assert found is not None and found.dirty


def test_not_a_git_tree_means_no_note_and_no_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORT_TEST_PIN", "1234")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = write_config(tmp_path / "plain")
    written = reconcile(root)
    assert written.document["source"] is None and written.note_commit is None
    assert written.warnings == []


def test_git_notes_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORT_TEST_PIN", "1234")
    root = new_repo(tmp_path, extra="reports: {git_notes: false}\n")
    written = reconcile(root)
    assert written.note_commit is None
    assert written.document["source"]["commit"] == git(root, "rev-parse", "HEAD").strip()
    p = subprocess.run(
        ["git", "-C", str(root), "notes", "--ref=provgit", "show", "HEAD"], capture_output=True
    )
    assert p.returncode != 0


def test_push_failure_is_a_warning_and_push_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORT_TEST_PIN", "1234")
    root = new_repo(tmp_path, extra="reports: {push_notes: true}\n")
    # No remote "origin": the run still writes its reports and its note.
    written = reconcile(root)
    assert written.note_commit is not None
    assert len(written.warnings) == 1
    assert written.warnings[0].startswith("cannot push refs/notes/provgit to origin: ")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(root, "remote", "add", "origin", str(remote))
    written = reconcile(root)
    assert written.warnings == []
    pushed = git(remote, "notes", "--ref=provgit", "show", git(root, "rev-parse", "HEAD").strip())
    assert json.loads(pushed)["run"]["id"] == written.document["run"]["id"]


@pytest.mark.parametrize("configured", [False, True])
def test_the_note_is_signed_by_the_configured_identity_else_by_provgit(
    configured: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORT_TEST_PIN", "1234")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("NAME", "EMAIL"):
        for who in ("AUTHOR", "COMMITTER"):
            monkeypatch.delenv(f"GIT_{who}_{name}", raising=False)
    monkeypatch.delenv("EMAIL", raising=False)
    root = new_repo(tmp_path)
    if configured:
        git(root, "config", "user.name", "Ops Bot")
        git(root, "config", "user.email", "ops@example.net")
    reconcile(root)
    assert note(root)["format"] == "provgit.note/1"
    author = git(root, "log", "-1", "--format=%an <%ae>", "refs/notes/provgit").strip()
    assert author == ("Ops Bot <ops@example.net>" if configured else "provgit <provgit@localhost>")


def test_local_git_commands_get_no_secret_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PIN environment (tens of thousands of variables) is not copied into
    every git process; what git reads is."""
    from provgit.publish import notes

    monkeypatch.setenv("VM_PIN_SOMEONE", "4821")
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i key")
    local, push = notes._env(False), notes._env(True)
    assert "VM_PIN_SOMEONE" not in local and local["GIT_SSH_COMMAND"] == "ssh -i key"
    assert local["PATH"] == os.environ["PATH"] and local["LC_ALL"] == "C"
    # A push keeps everything a credential helper or proxy may read.
    assert push["VM_PIN_SOMEONE"] == "4821"


def test_one_report_reads_the_environment_once_for_its_git_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git_source's two commands and the note's share one reading of the
    environment (20,000 PIN names looked at each time); the next report reads
    it again, so a variable set between runs reaches git."""
    from provgit.publish import notes

    monkeypatch.setenv("REPORT_TEST_PIN", "1234")
    root = new_repo(tmp_path)
    reconcile(root)
    reads: list[object] = []
    store = notes.environ_store

    def counted() -> Any:
        reads.append(store())
        return reads[-1]

    monkeypatch.setattr(notes, "environ_store", counted)
    git_calls: list[dict[str, str]] = []
    run = subprocess.run

    def recorded(*args: Any, **kwargs: Any) -> Any:
        git_calls.append(kwargs["env"])
        return run(*args, **kwargs)

    monkeypatch.setattr(notes.subprocess, "run", recorded)
    reconcile(root)
    assert len(git_calls) == 3 and len(reads) == 1
    assert all(env == git_calls[0] for env in git_calls)
    monkeypatch.setenv("GIT_TRACE_TEST_MARK", "1")
    reconcile(root)
    assert len(git_calls) == 6 and len(reads) == 2
    assert all(env["GIT_TRACE_TEST_MARK"] == "1" for env in git_calls[3:])
    assert "REPORT_TEST_PIN" not in git_calls[-1]
    monkeypatch.undo()
    assert note(root)["run"]["id"] == 3
