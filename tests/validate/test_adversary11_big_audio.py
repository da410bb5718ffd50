"""Adversary 11: a file the config names other than its YAML (prompt audio) was
read whole into memory: a sparse 3 GiB `welcome.wav` (a careless copy, or a
pull request's) made validate, plan and reconcile die with a MemoryError
traceback (or take the machine's memory), and a commit's huge blob was read
whole through `git cat-file`. Such a file is now not read past
MAX_OTHER_BYTES: a validation error naming the file and the limit, nothing
planned or changed. provgit runs as a process of its own, bounded in time and
memory, on embedded elements."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from provgit.source import MAX_OTHER_BYTES, read_directory
from provgit.source.git import read_commit
from provgit.validate import validate_source
from validate.base import BASE, wav, write

PROVGIT = [sys.executable, "-m", "provgit"]
# Far more than validating this network takes; far below the file's 3 GiB.
MEMORY_BOUND = 1536 * 2**20
LIMIT_WORDS = f"over the {MAX_OTHER_BYTES // 2**20} MiB limit"


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


def _provgit(*args: str) -> tuple[int, str]:
    """Exit code and all it wrote (validate's problems go to stdout, the others' to stderr)."""
    env = {**os.environ, "ALICE_PIN": "4821"}
    env.pop("PROVGIT_STATE_DIR", None)
    p = subprocess.run(
        [*PROVGIT, *args],
        capture_output=True,
        text=True,
        timeout=240,
        preexec_fn=_bounded,
        env=env,
    )
    return p.returncode, p.stdout + p.stderr


def _sparse(path: Path, size: int) -> None:
    path.unlink(missing_ok=True)
    with path.open("wb") as f:
        f.truncate(size)


def test_a_huge_prompt_file_is_a_validation_error_and_changes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "config"
    write(config, BASE)
    code, out = _provgit("reconcile", str(config))
    assert code == 0, out[-2000:]
    _sparse(config / "audio" / "welcome.wav", 3 * 2**30)

    for command in ("validate", "plan", "reconcile"):
        code, out = _provgit(command, str(config))
        assert code == 1, (command, code, out[-2000:])
        assert "Traceback" not in out and "MemoryError" not in out, out[-2000:]
        assert "audio file 'audio/welcome.wav' is 3,221.2 MB" in out, out[-2000:]
        assert LIMIT_WORDS in out
        assert "nothing was changed" in out or "nothing was planned or changed" in out

    # Put right, the network is as it was: nothing to do.
    (config / "audio" / "welcome.wav").write_bytes(wav())
    code, out = _provgit("plan", str(config), "--detailed-exitcode")
    assert code == 0, out[-2000:]


def test_a_file_growing_past_the_bound_while_named_again_is_noticed(tmp_path: Path) -> None:
    """The validation cache keys a read that was refused for its size apart
    from a missing file, both ways."""
    config = tmp_path / "config"
    write(config, BASE)
    audio = config / "audio" / "welcome.wav"
    _sparse(audio, MAX_OTHER_BYTES + 1)
    code, out = _provgit("validate", str(config))
    assert code == 1 and LIMIT_WORDS in out, out[-2000:]
    audio.unlink()
    code, out = _provgit("validate", str(config))
    assert code == 1 and "not found in the config root" in out, out[-2000:]
    _sparse(audio, MAX_OTHER_BYTES + 1)
    code, out = _provgit("validate", str(config))
    assert code == 1 and LIMIT_WORDS in out, out[-2000:]
    audio.write_bytes(wav())
    code, out = _provgit("validate", str(config))
    assert code == 0, out[-2000:]


@pytest.mark.slow
def test_a_huge_blob_in_a_commit_is_not_read_and_is_a_validation_error(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo, BASE)
    (repo / "audio" / "welcome.wav").write_bytes(b"\0" * (MAX_OTHER_BYTES + 1))

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(repo), *args], check=True, capture_output=True, timeout=120
        )

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "c")
    source = read_commit(repo, "HEAD")
    assert source.read_other("audio/welcome.wav") is None
    assert source.oversize == {"audio/welcome.wav": MAX_OTHER_BYTES + 1}
    result = validate_source(source, cache_dir=None)
    messages = [d.message for d in result.diagnostics if d.severity == "error"]
    assert any(LIMIT_WORDS in m and "audio/welcome.wav" in m for m in messages), messages
    # A directory read of the same work tree says the same.
    result = validate_source(read_directory(repo), cache_dir=None)
    messages = [d.message for d in result.diagnostics if d.severity == "error"]
    assert any(LIMIT_WORDS in m and "audio/welcome.wav" in m for m in messages), messages
