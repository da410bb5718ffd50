"""Adversary 11: a saved plan was read whole before its signature could be
checked: a plan artifact replaced by a sparse 3 GiB file (or any file of
gigabytes) made `provgit apply PLAN` and `provgit show PLAN` die with a
MemoryError traceback. A plan file past the bound a saved plan may be is now
refused unread, naming the file and the bound, and nothing reaches an element.
Real simulators on 127.0.0.1; provgit runs as a process of its own, bounded
in time and memory."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from .helpers import Sim, cli, users_on, write_config

PROVGIT = [sys.executable, "-m", "provgit"]
# Far more than applying three users takes; far below the plan file's 3 GiB.
MEMORY_BOUND = 1536 * 2**20


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


def _provgit(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PROVGIT_STATE_DIR"}
    return subprocess.run(
        [*PROVGIT, *args],
        capture_output=True,
        text=True,
        timeout=240,
        preexec_fn=_bounded,
        env=env,
    )


def test_a_plan_file_of_gigabytes_is_refused_unread_and_nothing_is_applied(
    tmp_path: Path, sims: list[Sim]
) -> None:
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    write_config(tmp_path / "config", sims, users=3, first_name="Cy")
    plan = tmp_path / "plan.json"
    made = cli("plan", str(config), "--out", str(plan))
    assert made.code == 0, made.out + made.err
    before = {s.name: s.records() for s in sims}
    plan.unlink()
    with plan.open("wb") as f:
        f.truncate(3 * 2**30)

    for args in (("apply", str(plan), "--config", str(config), "--yes"), ("show", str(plan))):
        p = _provgit(*args)
        assert p.returncode != 0, p.stdout[-2000:]
        assert "Traceback" not in p.stderr and "MemoryError" not in p.stderr, p.stderr[-2000:]
        assert f"{plan} is 3,072 MiB, over the 2,048 MiB a saved plan may be" in p.stderr
        assert "not read, nothing applied" in p.stderr
    assert {s.name: s.records() for s in sims} == before
    assert all(users_on(s) for s in sims)  # still the first names the network had
    assert all(u["first_name"] == "Ann" for s in sims for u in s.records()["users"].values())
