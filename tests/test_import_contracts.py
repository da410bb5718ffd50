"""The import contracts (.importlinter) hold today, and an import against one breaks it.

scripts/test runs `lint-imports` before the suite; these tests keep the contracts
themselves from going missing or going vacuous (a contract that names nothing
real would pass whatever the code imports).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".importlinter"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

LAYERS = "Pipeline layers: a stage imports only the stages below it"
INDEPENDENT = "Drivers and the simulator are independent: they share only provgit.wire"
SIMULATOR = "The pipeline reaches elements through drivers, never the simulator"
NO_CLI = "No package imports the CLI"
REPORT = "Reports read the journal through the journal's API, not its SQLite file"
API = "The CLI and the watcher reach the pipeline stages only through the API"


def _lint_imports(pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        # Ahead of the editable install's src/ path, so the copy is what is analysed.
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(CONFIG)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_import_contract_is_kept() -> None:
    run = _lint_imports()
    assert run.returncode == 0, run.stdout + run.stderr
    for name in (LAYERS, INDEPENDENT, SIMULATOR, NO_CLI, REPORT, API):
        assert f"{name} KEPT" in run.stdout, run.stdout


# One import against each contract, each in a module the contract covers, and
# the import line lint-imports must name for it.
AGAINST = [
    ("model/common.py", "import provgit.plan", LAYERS, "provgit.model.common -> provgit.plan"),
    (
        "simulator/store.py",
        "import provgit.drivers.base",
        INDEPENDENT,
        "provgit.simulator.store -> provgit.drivers.base",
    ),
    (
        "observe/__init__.py",
        "import provgit.simulator.store",
        SIMULATOR,
        "provgit.observe -> provgit.simulator",
    ),
    ("render/escape.py", "import provgit.cli", NO_CLI, "provgit.render.escape -> provgit.cli"),
    ("report/states.py", "import sqlite3", REPORT, "provgit.report.states -> sqlite3"),
    ("cli/init.py", "import provgit.drivers", API, "provgit.cli.init -> provgit.drivers"),
]


def test_an_import_against_each_contract_breaks_it(tmp_path: Path) -> None:
    # One copy of the package with every such import, analysed once (a run is a
    # few seconds on a loaded machine).
    copy = tmp_path / "provgit"
    shutil.copytree(ROOT / "src" / "provgit", copy, ignore=shutil.ignore_patterns("__pycache__"))
    for module, statement, _, _ in AGAINST:
        target = copy / module
        target.write_text(target.read_text() + f"\n{statement}  # against the contract\n")
    run = _lint_imports(pythonpath=tmp_path)
    assert run.returncode != 0, run.stdout
    for _, _, contract, reported in AGAINST:
        assert f"{contract} BROKEN" in run.stdout, run.stdout
        assert reported in run.stdout, run.stdout
