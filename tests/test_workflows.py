"""The GitHub workflows are valid (actionlint) and the reusable one keeps its contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
        "actionlint"
    )
    if found is None:
        pytest.fail(
            "actionlint is not installed; it comes with the test extra (pip install -e '.[test]')"
        )
    return found


def test_every_workflow_passes_actionlint() -> None:
    assert WORKFLOWS, "no workflows found"
    result = subprocess.run(
        [_actionlint(), *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    result = subprocess.run([_actionlint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_reusable_workflow_is_callable_and_comments_once() -> None:
    doc = YAML(typ="safe").load((ROOT / ".github/workflows/provgit-config.yml").read_text())
    assert "workflow_call" in doc["on"]
    steps = doc["jobs"]["check"]["steps"]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "provgit validate" in runs and "--format github" in runs
    assert "provgit diff" in runs and "provgit plan" in runs
    script = next(s["with"]["script"] for s in steps if "github-script" in s.get("uses", ""))
    # Updated in place: the comment is found by the marker the markdown renderer writes.
    from provgit.render.plan_markdown import MARKER

    assert MARKER in script and "updateComment" in script


def test_ci_workflow_runs_the_readme_test_command() -> None:
    doc = YAML(typ="safe").load((ROOT / ".github/workflows/ci.yml").read_text())
    runs = [s.get("run", "") for s in doc["jobs"]["test"]["steps"]]
    assert "bash .ci/run" in runs
    assert "scripts/test" in (ROOT / ".ci/run").read_text()
