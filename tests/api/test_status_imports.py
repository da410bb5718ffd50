"""`provgit status` of a network in sync loads what the derivation needs: not
the apply engine, the element drivers, asyncio, the terminal renderer or the
plan computation; a `reconcile` with nothing to do loads no plan renderer, no
process pool and no urllib.request (every module is start-up time, paid by
every admin, every status poll and every scheduled reconcile)."""

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
heavy = tuple(sys.argv[1].split(","))
try:
    main(sys.argv[2:])
except SystemExit as e:
    code = e.code
loaded = sorted(m for m in sys.modules if m.startswith(heavy))
print("\\nLOADED", json.dumps(loaded), code, file=sys.stderr)
"""
# Modules a status in sync has no use for.
STATUS_HEAVY = (
    "provgit.apply.engine",
    "provgit.drivers",
    "provgit.api.network",
    "provgit.api.planning",
    "provgit.plan.compute",
    "provgit.incremental.session",
    "rich",
    "asyncio",
    "multiprocessing",
    "urllib.request",
    "xml.sax",
)
# Modules a reconcile that plans from the memo and writes nothing has no use for.
RECONCILE_HEAVY = (
    "provgit.render.plan_text",
    "rich",
    "multiprocessing",
    "concurrent.futures.process",
    "urllib.request",
    "xml.sax",
)


def _loaded(heavy: tuple[str, ...], argv: list[str]) -> tuple[list[str], str, str]:
    """The modules of `heavy` a CLI run loaded, its exit code and its stdout."""
    p = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(heavy), *argv],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=True,
    )
    line = p.stderr.rsplit("LOADED ", 1)[1].split()
    return json.loads(line[0]), line[1], p.stdout


def test_status_in_sync_loads_no_apply_engine_drivers_asyncio_or_rich(sample: Path) -> None:
    state_dir = sample.parent / "state"
    config = Config.open(sample, state_dir)
    assert asyncio.run(config.reconcile()).exit_code == 0
    argv = ["status", str(sample), "--state-dir", str(state_dir), "--format", "json"]
    loaded, code, out = _loaded(STATUS_HEAVY, argv)
    doc = json.loads(out)
    assert doc["in_sync"] is True and doc["counts"]["resources"] > 0
    assert (loaded, code) == ([], "0")


def test_reconcile_with_nothing_to_do_loads_no_plan_renderer_process_pool_or_urllib(
    sample: Path,
) -> None:
    state_dir = sample.parent / "state"
    config = Config.open(sample, state_dir)
    assert asyncio.run(config.reconcile()).exit_code == 0
    loaded, code, out = _loaded(
        RECONCILE_HEAVY, ["reconcile", str(sample), "--state-dir", str(state_dir)]
    )
    assert (loaded, code) == ([], "0"), out
    # It wrote its reports, the Atom feed among them (escaped without xml.sax).
    feed = (state_dir / "status" / "feed.atom").read_text()
    assert feed.startswith("<?xml") and "</feed>" in feed
