"""`provgit diff` between two commits of a real temporary git repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NET = """
elements:
  - {name: mcl, type: micollab, ceid: 1}
  - {name: mivb1, type: mivb, ceid: 2, cluster: c1, admin_group: g1}
  - {name: mivb2, type: mivb, ceid: 3, cluster: c1, admin_group: g1}
classes_of_service:
  - {number: 1, comment: Default}
templates:
  - {name: Basic, phones: [{label: Desk, device_type: "6920", primary: true}], cos: {day: 1}}
roles:
  - {name: Agent, template: Basic}
"""
USER = """
users:
  - login_id: {login}
    first_name: {first}
    last_name: Doe
    role: Agent
    host: mivb1
    voicemail_pin: {{env: PIN_{login}}}
    services: [{{dn: "{dn}"}}]
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout.strip()


def provgit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provgit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "netconfig"
    (repo / "config").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "admin@example.com")
    git(repo, "config", "user.name", "Admin")
    (repo / "config" / "provgit.yaml").write_text("network: difftest\n")
    (repo / "config" / "network.yaml").write_text(NET)
    (repo / "config" / "users.yaml").write_text(USER.format(login="jdoe", first="John", dn="2001"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "tag", "base")
    (repo / "config" / "users.yaml").write_text(
        USER.format(login="jdoe", first="Johnny", dn="2001")
        + USER.format(login="asmith", first="Ann", dn="2002").replace("users:\n", "")
    )
    git(repo, "commit", "-q", "-am", "rename jdoe, add asmith")
    return repo


def test_diff_between_two_commits_lists_changes_per_element(repo: Path) -> None:
    r = provgit("diff", "config", "--base", "base", "--format", "json", cwd=repo)
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    ops = {
        e["element"]: sorted(f"{o['action']} {o['collection']}/{o['key']}" for o in e["operations"])
        for e in plan["elements"]
    }
    assert ops == {
        "mcl": ["add users/asmith", "modify users/jdoe"],
        "mivb1": ["add users/asmith", "modify users/jdoe"],
        "mivb2": ["add remote_directory/2002", "modify remote_directory/2001"],
    }
    assert plan["mode"] == "diff" and plan["source"] == "base..HEAD"
    jdoe = next(o for o in plan["elements"][0]["operations"] if o["key"] == "jdoe")
    assert jdoe["changes"]["first_name"] == {"before": "John", "after": "Johnny"}


def test_diff_detailed_exitcode_and_no_change(repo: Path) -> None:
    r = provgit("diff", "config", "--base", "HEAD", "--detailed-exitcode", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "0 to add, 0 to modify, 0 to delete" in r.stdout
    r = provgit("diff", "config", "--base", "base", "--detailed-exitcode", cwd=repo)
    assert r.returncode == 2, r.stderr


def test_diff_needs_no_secret_and_no_element(repo: Path) -> None:
    # The PIN variables are not set and no element exists anywhere: diff still works.
    r = provgit("diff", "config", "--base", "base", "--format", "markdown", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("<!-- provgit-plan -->")
    assert "| mcl | micollab | 1 | 1 | 0 |" in r.stdout
    assert not (repo / "config" / ".provgit" / "elements").exists()


def test_diff_of_an_invalid_head_fails_with_locations(repo: Path) -> None:
    (repo / "config" / "users.yaml").write_text(USER.format(login="x", first="X", dn="2001"))
    git(repo, "commit", "-q", "-am", "bad login")
    r = provgit("diff", "config", "--base", "base", "--format", "github", cwd=repo)
    assert r.returncode == 1
    assert "::error file=users.yaml,line=3," in r.stdout
    assert "Traceback" not in r.stderr


def test_diff_with_an_unknown_revision_is_a_usage_error(repo: Path) -> None:
    r = provgit("diff", "config", "--base", "no-such-ref", cwd=repo)
    assert r.returncode == 1
    assert "unknown git revision 'no-such-ref'" in r.stderr
    assert "Traceback" not in r.stderr


def test_diff_outside_a_git_repository_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    r = provgit("diff", "config", "--base", "HEAD", cwd=tmp_path)
    assert r.returncode == 1
    assert "config is not inside a git repository" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_bare_clone_reads_the_same_config_as_the_work_tree(repo: Path, tmp_path: Path) -> None:
    from provgit.source.git import CommitReader, read_commit, resolve_commit

    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True, timeout=30)
    from_tree = read_commit(repo / "config", "base")
    from_bare = CommitReader(bare, "config", "bare").read(resolve_commit(bare, "base"))
    assert from_tree.commit == from_bare.commit == git(repo, "rev-parse", "base")
    assert [(f.path, f.data, f.blob_id) for f in from_tree.files] == [
        (f.path, f.data, f.blob_id) for f in from_bare.files
    ]
    assert [f.path for f in from_bare.files] == ["network.yaml", "provgit.yaml", "users.yaml"]


def test_diff_reads_the_repository_asked_for_even_inside_a_git_hook(
    repo: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    # Git sets GIT_DIR for hooks; it must not redirect provgit's reads.
    r = subprocess.run(
        [sys.executable, "-m", "provgit", "diff", "config", "--base", "base", "--format", "json"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "GIT_DIR": str(other / ".git")},
    )
    assert r.returncode == 0, r.stderr
    keys = {o["key"] for e in json.loads(r.stdout)["elements"] for o in e["operations"]}
    assert keys == {"asmith", "jdoe", "2001", "2002"}
