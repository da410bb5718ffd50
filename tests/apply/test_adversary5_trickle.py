"""An element that answers one byte at a time, each inside the read timeout,
never finishes an answer: the per-read timeout alone never fires, so a run
would wait on it forever. The driver's total deadline per request
(connection.request_deadline) ends it: the element is reported, never Sync
Completed, and the other elements go on. While the run waits, the status
already says the element is not in sync. Real simulators behind a hostile
element on 127.0.0.1."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import PROVGIT, Sim, cli, write_config

pytestmark = pytest.mark.slow

TRICKLE = Path(__file__).parent.parent / "support" / "trickle_element.py"
# The trickle ends by itself after this long: a bound, far past the deadline.
TRICKLE_LIMIT = 240.0
RUN_BOUND = 180.0


class Trickling:
    def __init__(self, sim: Sim, lines: queue.Queue[str]) -> None:
        self.sim = sim
        self.lines = lines

    def wait_trickling(self) -> None:
        while True:
            line = self.lines.get(timeout=RUN_BOUND)  # bounded: raises queue.Empty
            if line.strip() == "trickling":
                return


@pytest.fixture
def trickling(sims: list[Sim]) -> Iterator[Trickling]:
    """cs1's address as seen through an element whose feed trickles."""
    cs1 = sims[0]
    proc = subprocess.Popen(
        [sys.executable, str(TRICKLE), cs1.url, "0.2", str(TRICKLE_LIMIT)],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        first = lines.get(timeout=60)
        assert first.startswith("listening on "), first
        url = first.split()[-1]
        yield Trickling(Sim(cs1.name, cs1.type, cs1.proc, url, cs1.db), lines)
    finally:
        proc.terminate()
        proc.wait(timeout=60)  # a bound: it drains its connections on SIGTERM


def _deadline(config: Path, element: str, seconds: str) -> None:
    net = config / "net.yaml"
    lines = []
    for line in net.read_text().splitlines():
        if f"name: {element}," in line:
            line = line.replace("timeout: 5}", f"timeout: 2, request_deadline: {seconds}}}")
        lines.append(line)
    net.write_text("\n".join(lines) + "\n")


def test_a_trickling_change_feed_is_cut_off_at_the_request_deadline(
    sims: list[Sim], trickling: Trickling, tmp_path: Path
) -> None:
    cs2 = sims[1]
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0  # straight to cs1: cached, feed next
    write_config(tmp_path / "config", [trickling.sim, cs2], users=3, first_name="Bea")
    _deadline(config, "cs1", "3")
    run = subprocess.Popen(
        [*PROVGIT, "reconcile", str(config), "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        trickling.wait_trickling()
        # Meanwhile: the edit is not on cs1, and the status must not say it is.
        meanwhile = json.loads(cli("status", str(config), "--format", "json").out)
        assert meanwhile["elements"]["cs1"]["status"] != "Sync Completed"
        out, _ = run.communicate(timeout=RUN_BOUND)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=10)
    by = {e["element"]: e for e in json.loads(out)["elements"]}
    assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
    assert "in full within 3 s" in json.dumps(by["cs1"]), by["cs1"]
    assert by["cs2"]["status"] == "Sync Completed", by["cs2"]
    status = json.loads(cli("status", str(config), "--format", "json").out)
    assert status["elements"]["cs1"]["status"] != "Sync Completed"
    assert "Bea" not in json.dumps(sims[0].records()["users"])


def test_a_request_deadline_of_zero_is_refused_at_its_line(tmp_path: Path, sims: list[Sim]) -> None:
    config = write_config(tmp_path / "config", sims, users=1)
    _deadline(config, "cs1", "0")
    r = cli("validate", str(config))
    assert r.code != 0
    assert "net.yaml:" in r.out + r.err and "request_deadline" in r.out + r.err
