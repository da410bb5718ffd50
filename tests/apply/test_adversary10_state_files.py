"""Adversary 10: the files provgit reads back from its state directory (the
plan memo: `memo/*.marshal`, `meta.pickle`, the element memos, the stored
target; the observation cache; the parse and validation caches) replaced by
what a read never ends on or holds whole. A named pipe made every command
wait for a writer for ever; a link to /dev/zero or a sparse file of 3 GiB made
it read until memory ran out. Each is read no-follow, non-blocking, a regular
file only, up to a bound: a damaged memo, so a miss (planned and read in
full), and the run delivers. Real simulators on 127.0.0.1; provgit runs as a
process of its own, bounded in time and memory."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import Sim, cli, reported, status_by_element, users_on, write_config

pytestmark = pytest.mark.slow

PROVGIT = [sys.executable, "-m", "provgit"]
# Far more than a reconcile of three users takes; far below what /dev/zero gives.
MEMORY_BOUND = 1536 * 2**20
# Kept by other means, with tests of their own: the journal (its links refused,
# a pipe an SQLite error), the key (test_adversary7_state_key_file.py), the
# embedded element's store (the element's, not a memo), the locks.
OWN_TESTS = ("journal.sqlite", "secret.key", "elements", "locks")


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


def _provgit(*args: str) -> subprocess.CompletedProcess[str]:
    # A hang or a runaway read fails the test (TimeoutExpired, MemoryError), not the machine.
    return subprocess.run(
        [*PROVGIT, *args], capture_output=True, text=True, timeout=240, preexec_fn=_bounded
    )


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _sparse(path: Path) -> None:
    # Past every bound (2 GiB the largest), on no disk: a read would hold it all.
    with path.open("wb") as f:
        f.truncate(3 * 2**30)


def _planted(state: Path, plant: Callable[[Path], None]) -> list[str]:
    """Every file provgit reads back from `state` (but OWN_TESTS') replaced by `plant`."""
    replaced = []
    for path in sorted(state.rglob("*")):
        rel = path.relative_to(state)
        if rel.parts[0].startswith(OWN_TESTS) or not path.is_file() or path.is_symlink():
            continue
        path.unlink()
        plant(path)
        replaced.append(str(rel))
    return replaced


@pytest.mark.parametrize(
    "plant", [_fifo, _dev_zero, _sparse], ids=["fifo", "dev-zero", "sparse-3GiB"]
)
def test_state_files_a_read_never_ends_on_are_a_miss_not_a_hang(
    tmp_path: Path, sims: list[Sim], plant: Callable[[Path], None]
) -> None:
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    state = config / ".provgit"
    replaced = _planted(state, plant)
    # What the brief names is among them: the memo's meta, an element memo,
    # the stored target, an observation.
    for must in ("memo/meta.pickle", "memo/target.sqlite", "observed/cs1.marshal"):
        assert must in replaced, replaced
    assert any(r.startswith("memo/elements/") for r in replaced), replaced
    write_config(tmp_path / "config", sims, users=3, first_name="Bea")

    status = _provgit("status", str(config), "--format", "json")
    assert "Traceback" not in status.stderr and "MemoryError" not in status.stderr, status.stderr
    assert status.returncode in (0, 4, 5), status.stdout[-2000:] + status.stderr[-2000:]

    ran = _provgit("reconcile", str(config), "--format", "json")
    out = ran.stdout + ran.stderr
    assert "Traceback" not in out and "MemoryError" not in out, out[-3000:]
    assert ran.returncode == 0, out[-3000:]
    by = reported(ran.stdout)
    assert all(e["status"] == "Sync Completed" for e in by.values()), by
    # Planned in full, so delivered: Bea is on the call servers.
    for sim in sims:
        for key in users_on(sim):
            assert sim.records()["users"][key]["first_name"] == "Bea"
    assert set(status_by_element(config).values()) == {"Sync Completed"}
    # What a run writes back is a regular file again, in place of the plant.
    assert (state / "memo" / "meta.pickle").is_file()
    assert not (state / "memo" / "meta.pickle").is_symlink()


def test_a_named_pipe_for_the_settings_file_is_a_plain_error_not_a_hang(
    tmp_path: Path, sims: list[Sim]
) -> None:
    config = write_config(tmp_path / "config", sims, users=1)
    (config / "provgit.yaml").unlink()
    os.mkfifo(config / "provgit.yaml")
    for command in ("status", "plan"):
        ran = _provgit(command, str(config), "--format", "json")
        out = ran.stdout + ran.stderr
        assert "Traceback" not in out, out[-3000:]
        assert ran.returncode != 0, out[-3000:]
        if command == "plan":
            assert "provgit.yaml" in out, out[-3000:]
    # Nothing was written to the elements.
    assert all(not users_on(sim) for sim in sims)
