"""The distribution works on its own: the sdist builds a wheel that passes `twine check`
and `check-wheel-contents`, and that wheel, installed in a fresh virtualenv outside the
repository, validates and reconciles the sample network shipped in the sdist.

Offline: the build uses the test environment's setuptools (no isolated environment to
download), and the fresh virtualenv takes provgit from the wheel but its dependencies
from the test environment (a path entry after its own site-packages; `pip check`
confirms the wheel's requirements are met by them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _run(cmd: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    p = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, f"{cmd}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def _outside_env(venv: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PROVGIT_STATE_DIR")
    }
    path = os.pathsep.join([str(venv / "bin"), "/usr/bin", "/bin"])
    return {**env, "VIRTUAL_ENV": str(venv), "PATH": path, **extra}


def test_wheel_from_the_sdist_installs_and_runs_the_sample_outside_the_repository(
    tmp_path: Path,
) -> None:
    src = _source_tree(tmp_path / "src")
    dist = tmp_path / "dist"
    # Without --sdist/--wheel, build makes the sdist and then the wheel from it.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, src], cwd=tmp_path)
    (sdist,) = dist.glob("provgit-*.tar.gz")
    (wheel,) = dist.glob("provgit-*.whl")

    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        names = {n.removeprefix(top + "/") for n in tar.getnames()}
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert {"LICENSE", "schemas/status.schema.json", "sample-config/provgit.yaml"} <= names
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names), "tests need the repo"
    with zipfile.ZipFile(wheel) as whl:
        files = set(whl.namelist())
        metadata = whl.read(next(n for n in files if n.endswith(".dist-info/METADATA"))).decode()
    assert {
        "provgit/py.typed",
        "provgit/openapi/element-api-v1.yaml",
        "provgit/schemas/status.schema.json",
    } <= files
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in files)
    assert "License-Expression: Apache-2.0" in metadata

    _run([BIN / "twine", "check", "--strict", sdist, wheel], cwd=tmp_path)
    _run([BIN / "check-wheel-contents", wheel], cwd=tmp_path)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", wheel], tmp_path)
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path
        ).strip()
    )
    (site / "zz-test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "check"], cwd=tmp_path)

    sample = tmp_path / "unpacked" / top / "sample-config"
    pins = {n: "4821" for n in re.findall(r"env: ([A-Z0-9_]+)", _all_yaml(sample))}
    env = _outside_env(venv, pins)
    where = _run([python, "-c", "import provgit; print(provgit.__file__)"], tmp_path, env)
    assert Path(where.strip()).is_relative_to(site), where
    provgit = venv / "bin" / "provgit"
    assert "valid:" in _run([provgit, "validate", sample], tmp_path, env)
    assert "Sync Completed" in _run([provgit, "reconcile", sample], tmp_path, env)
    status = json.loads((sample / ".provgit/status/status.json").read_text(encoding="utf-8"))
    schema = json.loads((sample.parent / "schemas/status.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(status)]
    assert errors == [] and status["in_sync"] is True
    assert "--port" in _run([provgit, "element", "serve", "--help"], tmp_path, env)
    # The schemas shipped in the sdist are the ones the installed models generate.
    _run([provgit, "schema", "--check", "--out", sample.parent / "schemas"], tmp_path, env)
    # The installed wheel carries the status schema itself (no repository needed):
    # `provgit schema` writes it, and the report validates against that copy.
    written = tmp_path / "written-schemas"
    assert "status.schema.json" in _run([provgit, "schema", "--out", written], tmp_path, env)
    shipped = json.loads((written / "status.schema.json").read_text("utf-8"))
    assert shipped == schema
    assert not list(jsonschema.Draft202012Validator(shipped).iter_errors(status))
    _run([provgit, "schema", "--check", "--out", written], tmp_path, env)


def _source_tree(dest: Path) -> Path:
    """The working tree as git sees it (uncommitted edits in, ignored files out)."""
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
    for rel in filter(None, listed.split("\0")):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


def _all_yaml(root: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.yaml")))
