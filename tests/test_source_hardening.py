"""The source, git and state-file side of hostile or careless input.

Symlinks committed to git are read as a checkout would read them; nothing
reaches git as an option that came from a user; files holding element data or
keys are owner-only; an element file stays in the state directory.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from apply.helpers import read_store
from provgit.api.incremental import StageCache
from provgit.cli import main
from provgit.journal import Journal
from provgit.load.yaml_events import MAX_NESTING, parse_documents
from provgit.observe import Observation, ObservationCache
from provgit.publish.notes import git_source
from provgit.secrets import local_key
from provgit.simulator.store import ElementStore
from provgit.source import read_directory
from provgit.source.git import GitSourceError, read_commit, resolve_commit
from provgit.validate import validate_source
from provgit.watch.follower import FollowError, GitFollower
from provgit.watch.triggers import ConfigFilter
from validate.base import BASE, write

ROLE = "roles:\n  - name: Agent\n    template: Basc\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout


def _commit(repo: Path) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "c")
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A work tree whose config/ folder holds the valid base network."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo / "config", BASE)
    return repo


def _messages(path: Path) -> tuple[list[str], list[str]]:
    source = read_commit(path, "HEAD")
    return [f.path for f in source.files], [f"{e.path}: {e.message}" for e in source.errors]


# -- symlinks committed to git ------------------------------------------------------


def test_git_symlinked_folder_inside_the_config_is_read_under_the_link(repo: Path) -> None:
    write(repo / "config" / ".shared" / "team", {"roles.yaml": ROLE})
    os.symlink(".shared/team", repo / "config" / "team")
    _commit(repo)
    files, errors = _messages(repo / "config")
    assert "team/roles.yaml" in files and errors == []
    result = validate_source(read_commit(repo / "config", "HEAD"), None)
    assert [f"{d.location}: {d.message}" for d in result.diagnostics] == [
        "team/roles.yaml:3:5: template 'Basc' is not defined"
    ]


def test_git_symlinked_file_inside_the_config_is_read(repo: Path) -> None:
    write(repo / "config", {"people/roles.yaml": ROLE})
    os.symlink("people/roles.yaml", repo / "config" / "roles-link.yml")
    (repo / "config" / "people" / "roles.yaml").rename(repo / "config" / ".roles.yaml")
    os.symlink("../.roles.yaml", repo / "config" / "people" / "roles.yaml")
    _commit(repo)
    files, errors = _messages(repo / "config")
    # Two links to one file: read once, the second way is an error, not a duplicate flood.
    assert "people/roles.yaml" in files
    assert errors == [
        "roles-link.yml: the same file as people/roles.yaml (through a symlink): it would "
        "define every record twice; remove one of the two"
    ]


def test_git_symlinks_out_of_the_config_nowhere_or_in_a_loop_are_errors(repo: Path) -> None:
    config = repo / "config"
    (repo / "elsewhere").mkdir()
    (repo / "elsewhere" / "users.yaml").write_text("users: []\n")
    os.symlink("../elsewhere", config / "people")
    os.symlink("/etc/hosts", config / "hosts.yaml")
    os.symlink("missing.yaml", config / "gone.yaml")
    os.symlink("b.yaml", config / "a.yaml")
    os.symlink("a.yaml", config / "b.yaml")
    os.symlink("..", config / "audio" / "up")
    _commit(repo)
    files, errors = _messages(config)
    assert sorted(files) == sorted(["provgit.yaml", "network.yaml", "telephony.yaml", "ivr.yaml"])
    assert [e.split(": ", 1)[0] for e in errors] == [
        "a.yaml",
        "audio/up",
        "b.yaml",
        "gone.yaml",
        "hosts.yaml",
        "people",
    ]
    assert "symlink loop" in errors[0] and "symlink loop" in errors[1]
    assert "points to nothing" in errors[3]
    assert "points outside the config root" in errors[4] and "outside" in errors[5]


def test_git_yaml_extension_in_capitals_is_read(repo: Path) -> None:
    write(repo / "config", {"site/extra.YAML": ROLE, "site/more.Yml": "departments: []\n"})
    _commit(repo)
    files, _ = _messages(repo / "config")
    assert {"site/extra.YAML", "site/more.Yml"} <= set(files)


def test_diff_of_a_commit_with_a_symlink_out_of_the_root_fails_located(repo: Path) -> None:
    _commit(repo)
    os.symlink("/etc", repo / "config" / "people")
    _commit(repo)
    p = subprocess.run(
        [sys.executable, "-m", "provgit", "diff", "config", "--base", "HEAD~1"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    assert "people: error: symlink points outside the config root" in p.stdout + p.stderr
    assert "Traceback" not in p.stdout + p.stderr


# -- nothing from a user reaches git as an option -----------------------------------


def test_watch_repo_starting_with_a_dash_is_refused_before_git_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    result = CliRunner().invoke(
        main,
        [
            "watch",
            "--repo",
            f"--upload-pack=touch {marker}",
            "--state-dir",
            str(tmp_path / "state"),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "cannot start with '-'" in result.output
    assert not marker.exists()
    assert not (tmp_path / "state").exists()


def test_follower_refuses_option_like_repository_and_ref(tmp_path: Path) -> None:
    with pytest.raises(FollowError, match="cannot start with '-'"):
        GitFollower(f"--upload-pack=touch {tmp_path / 'x'}", "main", ".", tmp_path)
    with pytest.raises(FollowError, match="cannot start with '-'"):
        GitFollower("https://example.invalid/r.git", "--output=/tmp/x", ".", tmp_path)
    assert not (tmp_path / "x").exists()


def test_a_revision_shaped_like_an_option_is_an_unknown_revision(repo: Path) -> None:
    _commit(repo)
    out = repo.parent / "written-by-git"
    with pytest.raises(GitSourceError, match="unknown git revision"):
        resolve_commit(repo, f"--output={out}")
    assert not out.exists()


def test_a_repository_path_starting_with_a_dash_is_cloned_as_a_path(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--` before the URL: git reads it as a repository, never as an option."""
    _commit(repo)
    dashed = tmp_path / "-config-repo"
    repo.rename(dashed)
    monkeypatch.chdir(tmp_path)
    follower = GitFollower("./-config-repo", "main", "config", tmp_path / "state")
    follower.remote = True  # clone it as the watcher clones a URL
    follower.repo = tmp_path / "state" / "repo.git"
    follower.prepare()
    assert (tmp_path / "state" / "repo.git" / "HEAD").exists()
    assert [f.path for f in follower.read(follower.head()).files]


# -- files with element data or keys are owner-only ----------------------------------


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_element_store_and_its_wal_and_shm_are_created_0600(tmp_path: Path) -> None:
    path = tmp_path / "elements" / "cs1.sqlite"
    store = ElementStore(path, element_type="mivb")
    try:
        store._db.execute("CREATE TABLE IF NOT EXISTS t (x)")
        store._db.execute("INSERT INTO t VALUES (1)")
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert p.exists(), p
            assert _mode(p) == 0o600, (p, oct(_mode(p)))
    finally:
        store.close()


def test_an_existing_world_readable_element_store_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "cs1.sqlite"
    ElementStore(path, element_type="mivb").close()
    os.chmod(path, 0o644)
    ElementStore(path).close()
    assert _mode(path) == 0o600


def test_journal_secret_key_and_observation_cache_are_0600(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Journal.open(state):
        pass
    local_key(state)
    ObservationCache(state).save_all({"cs1": Observation("cs1", "running", 1)}, {})
    made = [p for p in state.rglob("*") if p.is_file()]
    assert {p.name for p in made} >= {"journal.sqlite", "secret.key"}
    assert any("cs1" in p.name for p in made)
    assert {p.name: oct(_mode(p)) for p in made} == {p.name: oct(0o600) for p in made}


def test_reconcile_leaves_no_world_readable_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALICE_PIN", "4321")
    root, state = tmp_path / "config", tmp_path / "state"
    write(root, BASE)
    result = CliRunner().invoke(main, ["reconcile", str(root), "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    elements = list((state / "elements").iterdir())
    assert any(p.name == "mc.sqlite" for p in elements)
    loose = {p.name: oct(_mode(p)) for p in elements if _mode(p) & 0o077}
    assert loose == {}
    assert _mode(state / "journal.sqlite") == 0o600


# -- embedded element files stay in the state directory ------------------------------


def _with_element(root: Path, connection: str) -> None:
    network = BASE["network.yaml"]
    assert isinstance(network, str)
    extra = f"  - name: ivr9\n    type: ivr\n    ceid: 99\n    connection: {connection}\n"
    write(root, {**BASE, "network.yaml": network + extra})


def test_relative_element_path_lands_in_the_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALICE_PIN", "4321")
    root, state = tmp_path / "config", tmp_path / "state"
    _with_element(root, "{path: sims/ivr9.sqlite}")
    result = CliRunner().invoke(main, ["reconcile", str(root), "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert any(read_store(state / "sims" / "ivr9.sqlite").values())
    assert not (root / "sims").exists()


def test_element_path_leaving_the_state_directory_through_a_symlink_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALICE_PIN", "4321")
    root, state, outside = tmp_path / "config", tmp_path / "state", tmp_path / "outside"
    outside.mkdir()
    state.mkdir()
    os.symlink(outside, state / "out")
    _with_element(root, "{path: out/ivr9.sqlite}")
    result = CliRunner().invoke(
        main, ["reconcile", str(root), "--state-dir", str(state), "--format", "json"]
    )
    assert result.exit_code != 0
    assert "leads outside the state directory" in result.output
    assert list(outside.iterdir()) == []


def test_element_path_outside_the_state_directory_when_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALICE_PIN", "4321")
    root, state, sims = tmp_path / "config", tmp_path / "state", tmp_path / "sims"
    monkeypatch.setenv("PROVGIT_ELEMENT_FILES_DIR", f"{tmp_path / 'elsewhere'}:{sims}")
    _with_element(root, f"{{allow_outside_state_dir: true, path: '{sims}/ivr9.sqlite'}}")
    result = CliRunner().invoke(main, ["reconcile", str(root), "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert any(read_store(sims / "ivr9.sqlite").values())


@pytest.mark.parametrize("named", [None, "elsewhere", "sims/../elsewhere"])
def test_a_repository_alone_cannot_put_an_element_file_outside_the_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named: str | None
) -> None:
    """allow_outside_state_dir comes from the repository: a pull request could
    point an element at any SQLite file provgit may write (another network's
    store, an application's database). Only a directory the host's operator
    names in PROVGIT_ELEMENT_FILES_DIR lets it out; elsewhere the element is
    not contacted, its file is not made, and the status says it is not in sync."""
    monkeypatch.setenv("ALICE_PIN", "4321")
    root, state, sims = tmp_path / "config", tmp_path / "state", tmp_path / "sims"
    sims.mkdir()
    victim = sims / "other-network.sqlite"
    victim.write_bytes(b"")
    if named is None:
        monkeypatch.delenv("PROVGIT_ELEMENT_FILES_DIR", raising=False)
    else:
        monkeypatch.setenv("PROVGIT_ELEMENT_FILES_DIR", str(tmp_path / named))
    _with_element(root, f"{{allow_outside_state_dir: true, path: '{victim}'}}")
    result = CliRunner().invoke(
        main, ["reconcile", str(root), "--state-dir", str(state), "--format", "json"]
    )
    assert result.exit_code != 0
    assert "PROVGIT_ELEMENT_FILES_DIR" in result.output
    assert victim.read_bytes() == b""
    assert sorted(p.name for p in sims.iterdir()) == ["other-network.sqlite"]
    status = CliRunner().invoke(
        main, ["status", str(root), "--state-dir", str(state), "--format", "json"]
    )
    doc = json.loads(status.output)
    assert doc["in_sync"] is False
    assert doc["elements"]["ivr9"]["status"] != "Sync Completed"


# -- what stays valid -----------------------------------------------------------------


def test_secret_file_outside_the_config_root_is_valid(tmp_path: Path) -> None:
    root = tmp_path / "config"
    telephony = BASE["telephony.yaml"]
    assert isinstance(telephony, str)
    pin = f"voicemail_pin: {{file: '{tmp_path}/pins/alice'}}"
    write(
        root, {**BASE, "telephony.yaml": telephony.replace("voicemail_pin: {env: ALICE_PIN}", pin)}
    )
    result = validate_source(read_directory(root), None)
    assert result.ok, [f"{d.location}: {d.message}" for d in result.diagnostics]


def test_nesting_up_to_the_cap_parses(tmp_path: Path) -> None:
    deep = "[" * MAX_NESTING + "]" * MAX_NESTING
    assert parse_documents(deep.encode()) == [json.loads(deep)]


def test_real_booleans_numbers_and_text_in_options_are_valid(tmp_path: Path) -> None:
    root = tmp_path / "config"
    extra = (
        "classes_of_service:\n  - number: 9\n"
        "    options: {toll_denied: false, twinning: true, ring_group: weekday, max_calls: 3}\n"
    )
    write(root, {**BASE, "site/cos.yaml": extra})
    result = validate_source(read_directory(root), None)
    assert result.ok, [f"{d.location}: {d.message}" for d in result.diagnostics]
    assert result.state.of("classes_of_service")["9"].options["ring_group"] == "weekday"


def test_the_watchers_incremental_validation_makes_the_same_checks(tmp_path: Path) -> None:
    """Secret files in the root and a missing provgit.yaml are refused in watch mode too."""
    root = tmp_path / "config"
    telephony = BASE["telephony.yaml"]
    assert isinstance(telephony, str)
    pin = f"voicemail_pin: {{file: '{root}/pins/alice'}}"
    write(
        root, {**BASE, "telephony.yaml": telephony.replace("voicemail_pin: {env: ALICE_PIN}", pin)}
    )
    stages = StageCache(tmp_path / "state")
    _, first = stages.validate(read_directory(root))
    assert [f"{d.location}: {d.message}"[:60] for d in first.diagnostics] == [
        f"telephony.yaml:32:5: secret file {root}/pins/alice is inside the config root"[:60]
    ]
    (root / "provgit.yaml").unlink()
    _, second = stages.validate(read_directory(root))
    assert any(
        d.message.startswith("no provgit.yaml at the config root") for d in second.diagnostics
    )


def test_symlink_loops_elsewhere_are_no_traceback(repo: Path, tmp_path: Path) -> None:
    """Prompt audio, the watcher's change filter and the git note's dirty check
    all meet a symlink loop without raising."""
    config = repo / "config"
    os.symlink("loop.wav", config / "audio" / "loop.wav")
    assert read_directory(config).read_other("audio/loop.wav") is None
    assert ConfigFilter(config)(None, str(config / "audio" / "loop.wav"))
    _commit(repo)
    os.symlink("again.yaml", config / "again.yaml")
    found = git_source(config)
    assert found is not None and found.dirty


def test_git_follower_on_a_work_tree_refuses_a_secret_file_inside_the_config(
    repo: Path,
) -> None:
    config = repo / "config"
    telephony = BASE["telephony.yaml"]
    assert isinstance(telephony, str)
    pin = f"voicemail_pin: {{file: '{config}/pins/alice'}}"
    write(config, {"telephony.yaml": telephony.replace("voicemail_pin: {env: ALICE_PIN}", pin)})
    _commit(repo)
    follower = GitFollower(str(repo), "main", "config", repo.parent / "state")
    follower.prepare()
    result = validate_source(follower.read(follower.head()), None)
    assert [d.message[:40] for d in result.diagnostics] == [
        f"secret file {config}/pins/alice is inside the config root"[:40]
    ]


# -- submodules ---------------------------------------------------------------------


def _add_submodule(repo: Path, tmp_path: Path, at: str) -> None:
    """A real submodule holding a users file, checked out at `at` and committed."""
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    write(other, {"more.yaml": "departments:\n  - name: Ghost\n"})
    _commit(other)
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(other), at)
    _commit(repo)


def test_a_submodule_inside_the_config_is_an_error_from_git_and_from_a_checkout(
    repo: Path, tmp_path: Path
) -> None:
    # A checkout reads the submodule's files, a commit cannot: the two would
    # plan different networks (a diff "in sync" while the checkout adds users).
    _commit(repo)
    _add_submodule(repo, tmp_path, "config/people")
    files, errors = _messages(repo / "config")
    assert "people/more.yaml" not in files
    assert len(errors) == 1 and errors[0].startswith("people: a git submodule")
    on_disk = read_directory(repo / "config")
    assert [f.path for f in on_disk.files if f.path.startswith("people")] == []
    assert [f"{e.path}: {e.message}" for e in on_disk.errors] == errors
    p = subprocess.run(
        [sys.executable, "-m", "provgit", "diff", "config", "--base", "HEAD~1"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    assert "people: " in p.stdout + p.stderr and "submodule" in p.stdout + p.stderr


def test_a_submodule_outside_the_config_folder_is_not_read(repo: Path, tmp_path: Path) -> None:
    _add_submodule(repo, tmp_path, "tools")
    files, errors = _messages(repo / "config")
    assert errors == [] and "provgit.yaml" in files
