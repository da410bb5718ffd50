"""Adversary 7: an element whose record listing never ends, never repeats a
page and never repeats a record: every page full of records it makes up,
under a cursor never given before. adversary6 stopped a listing that repeats
(a cursor, a first record); this one was bounded only by MAX_LISTED (ten
million records a collection), far past provgit's memory. Run under a memory
bound so the machine is not what gives out. Real simulators behind a hostile
element on 127.0.0.1 (tests/support/blind_element.py)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import Blind, Sim, cli, reported, status_by_element, write_config

pytestmark = pytest.mark.slow

# Several times what this run needs; far short of ten million records.
MEMORY_BOUND = 1536 * 1024 * 1024


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


def test_a_listing_of_ever_new_made_up_records_ends_before_memory_does(
    tmp_path: Path, blind: Blind, short_feed_sims: list[Sim]
) -> None:
    cs1, cs2 = sims = short_feed_sims
    config = write_config(tmp_path / "config", sims, users=8)
    assert cli("reconcile", str(config)).code == 0
    # A new state directory reads cs1 in full (its feed keeps 3 changes).
    shutil.rmtree(config / ".provgit")
    write_config(tmp_path / "config", [blind(cs1, "invent"), cs2], users=8)
    argv = [sys.executable, "-m", "provgit", "reconcile", str(config), "--format", "json"]
    r = subprocess.run(
        argv, capture_output=True, text=True, timeout=600, preexec_fn=_bounded, env=os.environ
    )
    assert "MemoryError" not in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    by = reported(r.stdout)
    assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
    assert "listed more than" in json.dumps(by["cs1"]), by["cs1"]
    assert by["cs2"]["status"] == "Sync Completed", by["cs2"]
    assert status_by_element(config)["cs1"] != "Sync Completed"
