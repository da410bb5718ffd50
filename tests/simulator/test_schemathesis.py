"""Schemathesis, every check, against a real simulator process: the element API
and its OpenAPI document agree on what a third-party tool generates, not only on
the cases written down in test_openapi.py.

Bounded for CI (a few hundred generated requests, ~20-30 s) and deterministic
(`--generation-deterministic`: the same cases every run, no example database).
The element API runs first; the admin endpoints after it, since fuzzing them
sets faults (offline, error rates) that would turn every later API answer into
a 503 or 500.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from .conftest import Simulator, start_simulator

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).with_name("schemathesis.toml")
# Per operation and phase: enough to reach every documented status, small enough for CI.
MAX_EXAMPLES = 25
RUN_TIMEOUT = 180
CLI = [
    sys.executable,
    "-c",
    "import sys; from schemathesis.cli import schemathesis; schemathesis()",
]


def schemathesis(
    sim: Simulator, spec: Path, paths: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    argv = [
        *CLI,
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        str(spec),
        "--url",
        sim.url,
        "--header",
        f"Authorization: Bearer {sim.token}",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--include-path-regex",
        paths,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=cwd)


@pytest.mark.parametrize("paths", ["^/v1/", "^/admin/"], ids=["element-api", "admin"])
def test_schemathesis_finds_nothing_against_the_simulator(tmp_path: Path, paths: str) -> None:
    sim = start_simulator(tmp_path, "--admin")
    try:
        with resources.as_file(resources.files("provgit") / "openapi/element-api-v1.yaml") as spec:
            done = schemathesis(sim, spec, paths, tmp_path)
    finally:
        sim.stop()
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    # It really ran: cases were generated, and every selected operation was tested.
    selected = re.search(r"Selected: (\d+)/\d+", done.stdout)
    tested = re.search(r"Tested: (\d+)", done.stdout)
    generated = re.search(r"(\d+) generated, \1 passed", done.stdout)
    assert selected and tested and generated, report
    assert int(selected.group(1)) >= 4 and tested.group(1) == selected.group(1), report
    assert int(generated.group(1)) >= 100, report
