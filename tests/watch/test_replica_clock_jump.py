"""A replica whose wall clock jumps holds no lease past its expiry on the
database's clock (issue #19). Leases expire on PostgreSQL's clock
(journal/leases.py) and a replica counts its own margin on its monotonic
clock (watch/replicas.py), so a wall clock stepped back an hour (an NTP step,
an admin's `date -s`) neither stretches a lease nor, stepped forward, drops
one; and a replica cut off with its clock an hour behind still stops writing
before its leases expire there, and the next holder's writes are the only
ones that land. The step is real in replica A's process: its `time.time()`
reads an offset file (tests/support/replica_clock.py), its monotonic clock is
left alone as such a step leaves it. Real PostgreSQL, real simulators.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from apply.helpers import Sim
from journal import pg

from .helpers import Watch, set_clock
from .replica_helpers import fences, lease_rows, make_cluster, sim_revision, wait_for

pytestmark = pytest.mark.slow
LEASE = 6.0
# The live document is kept up to a second (watch/live.py DOC_TTL): what it
# says of the leases may be that old.
DOC_SLACK = 1.5
HOUR = 3600.0


def _step(clock: Path, offset: float) -> None:
    """Set A's wall clock `offset` seconds from the real one; back once A took it."""
    set_clock(clock, offset)
    seen = clock.with_name(clock.name + ".seen")
    wait_for(f"A's wall clock at {offset:+.0f} s", lambda: float(seen.read_text()) == offset)


def _leases(url: str) -> tuple[float, dict[str, tuple[str | None, int, float]]]:
    """The database's clock, and each lease's (holder, token, expiry) on it."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT extract(epoch from clock_timestamp())").fetchone()
        assert row is not None
        rows = conn.execute("SELECT element, holder, token, expires FROM replica_leases")
        table = {e: (h, int(t), float(x)) for e, h, t, x in rows.fetchall()}
    return float(row[0]), table


def _renewed_twice_keeping(url: str, held: dict[str, int], a_id: str) -> None:
    """Every lease row expires at most LEASE after the database's now, and A
    keeps each of its leases with the same token across two renewals."""
    now, table = _leases(url)
    start = {e: table[e][2] for e in held}

    def twice() -> bool:
        db_now, rows = _leases(url)
        for e, (_holder, _token, expires) in rows.items():
            assert expires <= db_now + LEASE + 0.01, (e, expires - db_now)
        for e, token in held.items():
            assert rows[e][:2] == (a_id, token), (e, rows[e], token)
        # Two renewals: the expiry moved past where a renewal at the start
        # would have put it.
        return all(rows[e][2] > start[e] + 1.0 for e in held) and db_now > now + 2.0

    wait_for("A renewing its leases twice, same tokens", twice, timeout=60)


def test_a_replica_whose_wall_clock_jumps_holds_no_lease_past_the_databases_expiry(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    import psycopg

    database = pg_server.new_database()
    url = pg_server.url(database)
    # A logs in as its own role, so its sessions can be cut alone.
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS clockjump")
        conn.execute(f"CREATE ROLE clockjump LOGIN SUPERUSER PASSWORD '{pg.PASSWORD}'")
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=3)
    b = c.start()
    watches.append(b)
    clock = tmp_path / "a-clock"
    set_clock(clock, 0.0)
    c.journal_url = url.replace(f"//{pg.USER}:", "//clockjump:", 1)
    a = c.start(wall_clock=clock)
    watches.append(a)
    held = wait_for("the elements spread over both", lambda: c.spread(b, [a, b]))
    wait_for("Ann everywhere", lambda: c.all_named("Ann"), timeout=120)
    a_id = a.status()["watch"]["replica"]["id"]
    a_elements = sorted(e for e, h in held.items() if h == a_id)
    a_tokens = {e: t for e, (_, t) in lease_rows(url).items() if e in a_elements}

    # Stepped back an hour, then forward two: the leases go on as they were.
    for offset in (-HOUR, 2 * HOUR, -HOUR):
        _step(clock, offset)
        _renewed_twice_keeping(url, a_tokens, a_id)
        assert a.status()["watch"]["replica"]["healthy"] is True

    # Cut off with its clock an hour behind, then stepped back further: it
    # stops writing before the database's expiry, and B takes its elements
    # only after it.
    mark = a.mark()
    _, table = _leases(url)
    expiry = {e: table[e][2] for e in a_elements}
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("ALTER ROLE clockjump NOLOGIN")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'clockjump'"
        )
    cut_at = {s.name: sim_revision(s) for s in four_sims}
    a.wait_log("journal_unreachable", after=mark, timeout=30)
    # Stepped back two hours more while it cannot renew: whatever it counted
    # its leases' ends on before must not now lie two hours ahead.
    _step(clock, -3 * HOUR)

    def a_let_go() -> bool:
        db_now, _ = _leases(url)
        holds = set(a.status()["watch"]["replica"]["holds"])
        late = {e for e in holds & set(a_elements) if db_now > expiry[e] + DOC_SLACK}
        assert not late, (late, {e: db_now - expiry[e] for e in late})
        return not holds & set(a_elements)

    wait_for("A says it holds none of its elements", a_let_go, timeout=60)
    a.wait_log("writes_stopped", after=mark, timeout=30)

    def b_took_over() -> bool:
        db_now, rows = _leases(url)
        b_id = b.status()["watch"]["replica"]["id"]
        taken = {e for e in a_elements if rows[e][0] == b_id}
        # A claim of B's is only possible once A's lease expired there.
        assert all(db_now >= expiry[e] for e in taken), (taken, db_now, expiry)
        assert all(rows[e][1] > a_tokens[e] for e in taken), rows
        return taken == set(a_elements)

    wait_for("B holds A's elements", b_took_over, timeout=60)
    c.commit("Dee")
    wait_for("every element named Dee", lambda: c.all_named("Dee"), timeout=120)
    sims = {s.name: s for s in four_sims}
    for e in a_elements:
        late = [ch for ch in fences(sims[e])["changes"] if ch["revision"] > cut_at[e]]
        # Nothing under A's token after the cut: the new holder wrote it all.
        assert late and all(ch["token"] > a_tokens[e] for ch in late), late

    # Back on the database (its clock still an hour off): it rejoins.
    mark = a.mark()
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("ALTER ROLE clockjump LOGIN")
    a.wait_log("journal_reachable", after=mark, timeout=60)
    wait_for("A healthy again", lambda: a.status()["watch"]["replica"]["healthy"], timeout=30)
