"""The benchmarks time the tree PYTHONPATH names: "run with
PYTHONPATH=<tree>/src to time another tree" (an A/B) must not quietly time the
benchmark's own tree instead (`benchmarks/_common.py` used to put its own
`src` ahead of PYTHONPATH)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
WHICH = "import _common, provgit; print(provgit.__file__)"


def _provgit_seen(pythonpath: str | None) -> Path:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run(
        [sys.executable, "-c", WHICH],
        cwd=BENCHMARKS,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return Path(out.stdout.strip()).parent


def test_a_benchmark_imports_the_provgit_pythonpath_names(tmp_path: Path) -> None:
    other = tmp_path / "other" / "src"
    other.mkdir(parents=True)
    (other / "provgit").symlink_to(REPO / "src" / "provgit", target_is_directory=True)
    assert _provgit_seen(str(other)) == other / "provgit"


def test_without_a_tree_named_a_benchmark_imports_its_own(tmp_path: Path) -> None:
    assert _provgit_seen(None).resolve() == (REPO / "src" / "provgit").resolve()
    # A PYTHONPATH naming no provgit (tests' helpers, say) changes nothing.
    assert _provgit_seen(str(tmp_path)).resolve() == (REPO / "src" / "provgit").resolve()
