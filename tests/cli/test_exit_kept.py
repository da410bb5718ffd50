"""A command line ends without freeing its run one object at a time
(`provgit.cli.keep_until_exit`): real processes, their output whole and
their state usable by the next run; a caller's `main([...])` still frees."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

from apply.helpers import cli
from provgit import __version__
from provgit import cli as provgit_cli

PROVGIT = [sys.executable, "-m", "provgit"]

LOUD = """
import sys
from provgit import cli

class Loud:
    def __del__(self) -> None:
        sys.stdout.write("freed\\n")
        sys.stdout.flush()

cli.keep_until_exit(Loud())
sys.argv = ["provgit", *sys.argv[1:]]
cli.main()
"""


@pytest.fixture(autouse=True)
def _no_state_dir_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def test_the_process_ends_without_freeing_what_was_kept_its_output_flushed() -> None:
    done = _run(sys.executable, "-c", LOUD, "version")
    assert done.returncode == 0, done.stderr
    # Printed, flushed, and the kept value never freed (no teardown).
    assert done.stdout == f"provgit {__version__}\n"


class _Kept:
    pass


def test_a_callers_main_frees_what_the_command_kept() -> None:
    kept = _Kept()
    gone = weakref.ref(kept)
    provgit_cli.keep_until_exit(kept)
    del kept
    with pytest.raises(SystemExit) as ended:
        provgit_cli.main(["version"])
    assert ended.value.code == 0
    gc.collect()
    assert gone() is None
    assert not provgit_cli._KEPT


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "voice"
    made = cli("init", str(config))
    assert made.code == 0, made.out + made.err
    return config


def test_plan_and_reconcile_processes_leave_whole_output_and_usable_state(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    plan = _run(*PROVGIT, "plan", str(config), "--format", "json", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stderr
    doc = json.loads(plan.stdout)  # every byte reached the pipe
    assert doc["totals"]["add"] > 0 and doc["signature"]["value"]
    saved = tmp_path / "plan.json"
    out = _run(*PROVGIT, "plan", str(config), "--out", str(saved))
    assert out.returncode == 0, out.stderr
    assert f"plan saved to {saved}" in out.stdout
    assert json.loads(saved.read_text())["totals"] == doc["totals"]
    first = _run(*PROVGIT, "reconcile", str(config))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Sync Completed" in first.stdout
    # The journal and element stores the first process left unclosed are read
    # whole: everything it applied is there, nothing to do.
    again = _run(*PROVGIT, "reconcile", str(config))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Sync Completed: 0 applied, 0 failed" in again.stdout, again.stdout
    status = _run(*PROVGIT, "status", str(config))
    assert status.returncode == 0, status.stdout + status.stderr
