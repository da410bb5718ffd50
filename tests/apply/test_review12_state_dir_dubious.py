"""review12: `fsutil._tracked_by_git` fails open. When git refuses the
repository ("detected dubious ownership": its top folder is another user's,
e.g. a checkout made by root or a CI user with the network's folder handed to
the service account), `git ls-files` exits 128 and the check says "not
tracked": a committed `.provgit/secret.key` checked out 0600 (077 umask)
passes, though its author knows the key."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from provgit.fsutil import UnsafeStateDir, check_default_state_dir


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.net", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs another uid to own the repository")
def test_a_committed_key_in_a_repository_git_refuses_as_dubious_is_still_refused(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    state = repo / "net" / ".provgit"
    state.mkdir(parents=True, mode=0o700)
    key = state / "secret.key"
    key.write_text("00" * 32)
    key.chmod(0o600)
    _git(repo, "init", "-q")
    _git(repo, "add", "-f", "net")
    _git(repo, "commit", "-q", "-m", "planted key")
    with pytest.raises(UnsafeStateDir):  # git answers here: refused
        check_default_state_dir(state)
    # The repository's top is another user's; the network's folder is ours.
    os.chown(repo, 4321, 4321)
    os.chown(repo / ".git", 4321, 4321)
    with pytest.raises(UnsafeStateDir):
        check_default_state_dir(state)
