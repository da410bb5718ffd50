"""`provgit status` of a network in sync loads what the derivation needs: not
the apply engine, the element drivers, asyncio or the terminal renderer
(every module is start-up time, paid by every admin and every status poll)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from provgit.api import Config

PROBE = """
import json, sys
from provgit.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
heavy = ("provgit.apply.engine", "provgit.drivers", "provgit.api.network",
         "provgit.api.planning", "rich", "asyncio")
loaded = sorted(m for m in sys.modules if m.startswith(heavy))
print("\\nLOADED", json.dumps(loaded), code, file=sys.stderr)
"""


def test_status_in_sync_loads_no_apply_engine_drivers_asyncio_or_rich(sample: Path) -> None:
    state_dir = sample.parent / "state"
    config = Config.open(sample, state_dir)
    assert asyncio.run(config.reconcile()).exit_code == 0
    argv = ["status", str(sample), "--state-dir", str(state_dir), "--format", "json"]
    p = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=True,
    )
    doc = json.loads(p.stdout)
    assert doc["in_sync"] is True and doc["counts"]["resources"] > 0
    line = p.stderr.rsplit("LOADED ", 1)[1].split()
    assert json.loads(line[0]) == [] and line[1] == "0", p.stderr
