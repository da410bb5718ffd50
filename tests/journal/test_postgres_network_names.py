"""A fleet network's journal is the PostgreSQL schema `provgit_net_<name>`.
PostgreSQL cuts identifiers at 63 bytes without an error, so two long network
names sharing their first 51 characters would share one schema, each network
reading and writing the other's journal. The longest name a fleet may use must
keep its schema whole. Real PostgreSQL, real processes."""

from __future__ import annotations

from pathlib import Path

import psycopg

from api.conftest import sample  # noqa: F401 (the sample config fixture)
from apply.helpers import cli_process
from provgit.journal.location import network_schema

from . import pg

PREFIX = "n" * 50


def test_the_longest_network_names_keep_schemas_of_their_own(
    sample: Path,  # noqa: F811
    pg_server: pg.Server,
    tmp_path: Path,
) -> None:
    database = pg_server.new_database()
    url = pg_server.url(database)
    names = [PREFIX + "a", PREFIX + "b"]
    for i, name in enumerate(names):
        ran = cli_process(
            "--journal-url", url, "--network", name,
            "reconcile", str(sample), "--state-dir", str(tmp_path / f"s{i}"),
        )  # fmt: skip
        assert ran.code in (0, 4), ran.out + ran.err
    with psycopg.connect(url) as conn:
        found = {
            r[0]
            for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'provgit_net_%'"
            )
        }
        runs = {s: conn.execute(f"SELECT count(*) FROM {s}.runs").fetchone() for s in sorted(found)}
    assert found == {network_schema(n) for n in names}
    assert all(count == (1,) for count in runs.values()), runs


def test_a_network_name_whose_schema_postgresql_would_cut_is_refused(tmp_path: Path) -> None:
    name = PREFIX + "ab"  # 52 characters: provgit_net_ + 52 = 64 bytes
    ran = cli_process(
        "--journal-url", "postgresql://provgit@127.0.0.1:9/none", "--network", name,
        "status", "--state-dir", str(tmp_path / "s"),
    )  # fmt: skip
    assert ran.code == 1, ran.out + ran.err
    assert "--network" in ran.err and "at most 51" in ran.err
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "version: 1\njournal: {url: 'postgresql://provgit@127.0.0.1/fleet'}\nnetworks:\n"
        f"  - {{name: {PREFIX}east, repo: /srv/a.git}}\n"
        f"  - {{name: {PREFIX}west, repo: /srv/b.git}}\n"
    )
    checked = cli_process("fleet", "check", str(fleet))
    assert checked.code == 1, checked.out + checked.err
    assert f"{fleet}:4:6: networks/0/name: network name '{PREFIX}east' is not usable" in checked.err
    assert f"{fleet}:5:6: networks/1/name" in checked.err and "at most 51" in checked.err
