"""Adversary 7: the state directory's key file (secret.key) replaced by what a
read never ends on. A named pipe there made `status` and `reconcile` wait for
a writer for ever; a link to /dev/zero made them read until memory ran out.
Either is a damaged key now: status answers, a reconcile makes a new key (as
for a torn one) and delivers, and nothing secret is shown."""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from provgit.api import Config
from provgit.secrets import local_key

PROVGIT = [sys.executable, "-m", "provgit"]
# Enough for a status of the sample; far below what reading /dev/zero reaches.
MEMORY_BOUND = 1536 * 1024 * 1024


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


def _provgit(*args: str) -> subprocess.CompletedProcess[str]:
    # Bounded in time and memory: a hang or a runaway read fails the test, not the machine.
    return subprocess.run(
        [*PROVGIT, *args], capture_output=True, text=True, timeout=120, preexec_fn=_bounded
    )


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _huge(path: Path) -> None:
    path.write_text("ab" * (8 * 1024 * 1024) + "\n")


@pytest.mark.parametrize("plant", [_fifo, _dev_zero, _huge], ids=["fifo", "dev-zero", "huge"])
def test_a_key_file_a_read_never_ends_on_is_a_damaged_key_not_a_hang(
    sample: Path, plant: object
) -> None:
    state = sample.parent / "state"
    assert asyncio.run(Config.open(sample, state).reconcile()).exit_code == 0
    old = local_key(state)
    key = state / "secret.key"
    key.unlink()
    assert callable(plant)
    plant(key)

    status = _provgit("status", str(sample), "--state-dir", str(state), "--format", "json")
    assert status.returncode in (0, 4), status.stderr[-2000:]
    assert "MemoryError" not in status.stderr and "Traceback" not in status.stderr

    ran = _provgit("reconcile", str(sample), "--state-dir", str(state))
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    # A new key, a regular file of the owner's alone; the old key is never shown.
    assert key.is_file() and not key.is_symlink()
    assert (key.stat().st_mode & 0o077) == 0
    assert local_key(state) != old
    for out in (status.stdout, status.stderr, ran.stdout, ran.stderr):
        assert old.hex() not in out
    after = _provgit("status", str(sample), "--state-dir", str(state), "--format", "json")
    assert after.returncode == 0, after.stdout[-2000:] + after.stderr[-2000:]


def test_a_key_file_planted_as_a_link_is_not_followed_and_its_target_untouched(
    sample: Path, tmp_path: Path
) -> None:
    state = sample.parent / "state"
    assert asyncio.run(Config.open(sample, state).reconcile()).exit_code == 0
    # Another file of the user's (a key of theirs, world-readable): a link to
    # it planted as secret.key must neither become provgit's key nor be chmod'ed.
    theirs = tmp_path / "theirs.key"
    theirs.write_text("ab" * 32 + "\n")
    theirs.chmod(0o644)
    key = state / "secret.key"
    key.unlink()
    key.symlink_to(theirs)
    assert local_key(state) != bytes.fromhex("ab" * 32)
    ran = _provgit("reconcile", str(sample), "--state-dir", str(state))
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert theirs.read_text() == "ab" * 32 + "\n"
    assert theirs.stat().st_mode & 0o777 == 0o644
    assert key.is_file() and not key.is_symlink()


def test_a_key_file_that_is_a_directory_is_refused_plainly_and_left_as_it_is(
    sample: Path,
) -> None:
    state = sample.parent / "state"
    assert asyncio.run(Config.open(sample, state).reconcile()).exit_code == 0
    key = state / "secret.key"
    key.unlink()
    key.mkdir()
    (key / "kept").write_text("someone's file\n")
    elements = sorted((p.name, p.stat().st_mtime_ns) for p in (state / "elements").iterdir())

    for command in ("status", "reconcile"):
        out = _provgit(command, str(sample), "--state-dir", str(state))
        assert out.returncode == 3, out.stdout[-2000:] + out.stderr[-2000:]
        assert "Traceback" not in out.stderr
        assert f"{key} is a directory where provgit keeps a file" in out.stderr
    assert (key / "kept").read_text() == "someone's file\n"
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (state / "elements").iterdir()) == (
        elements
    )

    (key / "kept").unlink()
    key.rmdir()
    ran = _provgit("reconcile", str(sample), "--state-dir", str(state))
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert key.is_file()
