"""The PostgreSQL journal's connection drops in the middle of a real apply over
simulators: no element write goes out without its intent journaled, the run
ends with a clear message and exit code, and the next run settles it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from apply.helpers import Ran, Sim, cli_process, start_sims, write_config
from support import pg_drop_at

from . import pg

pytestmark = pytest.mark.slow

SERIAL = "  batch_size: 1\n  batches_in_flight: 1\n  element_concurrency: 1\n"


@pytest.fixture
def sims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sim]]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    started = start_sims(tmp_path, [("cs1", "mivb"), ("cs2", "mivb")])
    try:
        yield started
    finally:
        for s in started:
            s.stop()


def _reconcile_dropped_at(point: str, admin_url: str, url: str, config: Path) -> Ran:
    argv = pg_drop_at.command(point, admin_url, "--journal-url", url, "reconcile", str(config))
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    return Ran(p.returncode, p.stdout, p.stderr)


def test_a_journal_connection_dropped_mid_apply(
    sims: list[Sim], tmp_path: Path, pg_server: pg.Server
) -> None:
    url = pg_server.url(pg_server.new_database())
    config = write_config(tmp_path / "config", sims, users=6, extra_settings=SERIAL)
    ran = _reconcile_dropped_at("2", pg_server.admin_url, url, config)
    print(ran.code, ran.out[-3000:], ran.err[-5000:])
    assert False
