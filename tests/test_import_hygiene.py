"""`provgit validate` starts small: no HTTP client, no element server code, and
none of the stages after validation, not even the planner, the journal's
tables, SQLite or asyncio (the library API loads them on use)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "sample-config"

PROBE = """
import sys
from provgit.cli import main
try:
    main(["validate", sys.argv[1], "--no-cache"])
except SystemExit as e:
    assert e.code == 0, e.code
later = ("provgit.simulator", "provgit.drivers", "provgit.apply", "provgit.importing",
         "provgit.publish", "provgit.incremental", "provgit.plan", "provgit.projection",
         "provgit.journal.db", "provgit.observe")
heavy = sorted(m for m in sys.modules
               if m in ("aiohttp", "asyncio", "sqlite3") or m.startswith(later))
print("HEAVY", heavy)
"""


def test_validate_does_not_import_aiohttp_or_elements() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(SAMPLE)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "HEAVY []" in out, out
