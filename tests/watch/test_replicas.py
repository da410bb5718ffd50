"""Replicas of `provgit watch` sharing one PostgreSQL journal (issue #19): real
PostgreSQL (tests/journal/pg.py), real simulators, real watch processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from apply.helpers import Sim, start_sims
from journal import pg

from .helpers import Watch
from .replica_helpers import (
    by_pid,
    fenced_put,
    fences,
    make_cluster,
    sim_revision,
    wait_for,
    written_twice,
)

LEASE = 3.0


@pytest.fixture(scope="module")
def pg_server() -> Iterator[pg.Server]:
    why = pg.missing()
    if why is not None:
        pytest.fail(f"PostgreSQL is needed for the replica tests: {why}")
    with pg.running() as server:
        yield server


@pytest.fixture
def four_sims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sim]]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    # Three call servers and the MiCollab the users live on.
    specs = [("cs1", "mivb"), ("cs2", "mivb"), ("cs3", "mivb"), ("mcl", "micollab")]
    started = start_sims(tmp_path, specs)
    try:
        yield started
    finally:
        for s in started:
            s.stop()


def test_replicas_share_the_elements_and_write_each_record_once(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=40)
    replicas = [c.start() for _ in range(3)]
    watches += replicas
    held = wait_for(
        "the elements spread over three replicas", lambda: c.spread(replicas[0], replicas)
    )
    wait_for("every element has the first commit", lambda: c.all_named("Ann"))
    assert not any(written_twice(s, 0) for s in four_sims)
    before = {s.name: sim_revision(s) for s in four_sims}
    c.commit("Bea")
    wait_for("every element has the second commit", lambda: c.all_named("Bea"))
    for s in four_sims:
        assert written_twice(s, before[s.name]) == {}, s.name
        # Each element was written under its holder's lease only.
        report = fences(s)
        assert {ch["name"] for ch in report["changes"]} == {s.name}
        assert report["refused"] == []
    assert set(held) == {s.name for s in four_sims}
