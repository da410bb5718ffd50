"""Fleets without processes: the fair share of networks, the fleet file's
checks (every problem with file:line:col, nothing used), the merged metrics."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from apply.helpers import cli
from provgit.api.fleet import FleetFileError, read_fleet
from provgit.journal.leases import Lease
from provgit.journal.location import network_schema
from provgit.watch.fleet_leases import CLAIMS_PER_ROUND, fair_share, plan_round
from provgit.watch.fleet_status import merge_expositions

NAMES = frozenset(f"network:n{i:02d}" for i in range(20))


def _table(holders: dict[str, str]) -> dict[str, Lease]:
    return {n: Lease(n, h, 1, 100.0, True, 50.0) for n, h in holders.items()}


def _held(counts: dict[str, int]) -> dict[str, str]:
    names = sorted(NAMES)
    out: dict[str, str] = {}
    for replica, count in counts.items():
        for _ in range(count):
            out[names[len(out)]] = replica
    return out


@pytest.mark.parametrize(
    ("networks", "replicas", "share"),
    [
        (20, 3, 7),
        (20, 2, 10),
        (20, 1, 20),
        (20, 20, 1),
        (20, 30, 1),
        (1, 3, 1),
        (0, 3, 0),
        (7, 0, 7),
    ],
)
def test_fair_share_is_the_networks_over_the_live_replicas_rounded_up(
    networks: int, replicas: int, share: int
) -> None:
    assert fair_share(networks, replicas) == share


@pytest.mark.parametrize(
    ("counts", "me", "drain", "claim"),
    [
        # A replica joins two that hold 10 each: each of them stops 3.
        ({"a": 10, "b": 10, "c": 0}, "a", 3, 0),
        # The one that joined claims nothing held; it waits for them to be handed back.
        ({"a": 10, "b": 10, "c": 0}, "c", 0, 0),
        # A replica left (its leases handed back): the others claim, a few a round.
        ({"a": 7, "b": 7}, "a", 0, CLAIMS_PER_ROUND),
        # 7/7/6 is the fair spread of 20 over 3: nothing moves.
        ({"a": 7, "b": 7, "c": 6}, "a", 0, 0),
        ({"a": 7, "b": 7, "c": 6}, "c", 0, 0),
        # 7/7/5 and one free: the one below its share takes it.
        ({"a": 7, "b": 7, "c": 5}, "c", 0, 1),
        # 8/7/5 (share 7): the one above hands one over.
        ({"a": 8, "b": 7, "c": 5}, "a", 1, 0),
        # 7/7/4 and 2 free but taken by nobody: c takes them, the others do not.
        ({"a": 7, "b": 7, "c": 4}, "a", 0, 0),
    ],
)
def test_a_round_stops_what_is_beyond_the_share_and_claims_up_to_it(
    counts: dict[str, int], me: str, drain: int, claim: int
) -> None:
    held = _held(counts)
    live = sorted(counts)
    mine = {n for n, r in held.items() if r == me}
    drained, claimed = plan_round(me, NAMES, mine, set(), _table(held), live)
    assert (len(drained), len(claimed)) == (drain, claim)
    assert drained <= mine and not set(claimed) & set(held)


def test_a_replica_stopping_networks_stops_no_more_until_they_are_handed_back() -> None:
    held = _held({"a": 9, "b": 7, "c": 4})
    mine = {n for n, r in held.items() if r == "a"}
    draining = set(sorted(mine)[:2])
    drained, _ = plan_round("a", NAMES, mine, draining, _table(held), ["a", "b", "c"])
    assert drained == set()


@pytest.mark.parametrize(
    ("network", "schema"),
    [("east", "provgit_net_east"), ("east-1", "provgit_net_east_1"), ("0a", "provgit_net_0a")],
)
def test_each_network_has_a_schema_of_its_own(network: str, schema: str) -> None:
    assert network_schema(network) == schema


@pytest.mark.parametrize("network", ["East", "east_1", "-east", "", "a" * 52, "e;drop"])
def test_a_network_name_that_could_mix_or_inject_has_no_schema(network: str) -> None:
    with pytest.raises(ValueError):
        network_schema(network)


GOOD = """\
version: 1
journal:
  url: postgresql://provgit@db.example/provgit
  password: {env: PROVGIT_DB_PASSWORD}
leases: {seconds: 10}
networks:
  - {name: east, repo: /srv/git/east.git}
  - name: west-2
    repo: https://git.example/west.git
    ref: prod
    path: config
    secrets:
      CS_PASSWORD: {file: /etc/provgit/west/cs}
"""


def test_a_good_fleet_file_reads_with_defaults(tmp_path: Path) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text(GOOD)
    fleet = read_fleet(f)
    assert [(n.name, n.ref, n.path) for n in fleet.networks] == [
        ("east", "main", "."),
        ("west-2", "prod", "config"),
    ]
    assert fleet.lease_seconds == 10.0
    assert fleet.state_dir == tmp_path / ".provgit-fleet"
    assert fleet.location("west-2").schema == "provgit_net_west_2"
    assert fleet.network("west-2").secrets["CS_PASSWORD"].file == "/etc/provgit/west/cs"


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        (("{name: east,", "{name: East_1,"), ":7:6:", "network name 'East_1' is not usable"),
        (("{name: east,", "{name: west-2,"), ":8:5:", "network 'west-2' is named twice"),
        (
            ("{name: east, repo: /srv/git/east.git}", "{name: east}"),
            ":7:5:",
            "'repo' is a required",
        ),
        (
            ("password: {env: PROVGIT_DB_PASSWORD}", "password: hunter2"),
            ":4:3:",
            "a secret must be a reference, not a value",
        ),
        (("version: 1", "version: 2"), ":1:1:", "version"),
        (("repo: /srv/git/east.git", "repo: --upload-pack=x"), ":7:", "git as an option"),
        (("url: postgresql://provgit@", "url: mysql://provgit@"), ":3:3:", "journal/url"),
        (("leases: {seconds: 10}", "leases: {seconds: 0}"), ":5:", "leases/seconds"),
        (("    ref: prod", "    branch: prod"), ":10:5:", "'branch' was unexpected"),
    ],
)
def test_a_bad_fleet_file_says_where_and_what(
    tmp_path: Path, change: tuple[str, str], where: str, says: str
) -> None:
    f = tmp_path / "fleet.yaml"
    assert change[0] in GOOD
    f.write_text(GOOD.replace(change[0], change[1], 1))
    with pytest.raises(FleetFileError) as e:
        read_fleet(f)
    assert any(p.startswith(str(f) + where) and says in p for p in e.value.problems), e.value
    # No secret value is repeated back.
    assert "hunter2" not in str(e.value)


def test_a_bad_fleet_file_starts_nothing_and_exits_1(tmp_path: Path) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text(GOOD.replace("{name: east,", "{name: East_1,"))
    ran = cli("fleet", "watch", str(f), "--port", "0")
    assert ran.code == 1
    assert f"{f}:7:6: networks/0/name" in ran.err and "nothing started" in ran.err
    assert not (tmp_path / ".provgit-fleet").exists()
    checked = cli("fleet", "check", str(f))
    assert checked.code == 1 and f"{f}:7:6:" in checked.err


def test_a_fleet_file_that_is_not_yaml_says_where(tmp_path: Path) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text("version: 1\nnetworks: [\n")
    with pytest.raises(FleetFileError) as e:
        read_fleet(f)
    assert e.value.problems[0].startswith(f"{f}:")


def test_merged_metrics_carry_the_network_and_each_family_once() -> None:
    one = textwrap.dedent(
        """\
        # HELP provgit_pending Pending updates
        # TYPE provgit_pending gauge
        provgit_pending 2.0
        # HELP provgit_element_synced When
        # TYPE provgit_element_synced gauge
        provgit_element_synced{element="cs1"} 1.0
        """
    )
    merged = merge_expositions({"east": one, "west": one.replace("2.0", "0.0")})
    lines = merged.splitlines()
    assert lines.count("# TYPE provgit_pending gauge") == 1
    assert 'provgit_pending{network="east"} 2.0' in lines
    assert 'provgit_pending{network="west"} 0.0' in lines
    assert 'provgit_element_synced{network="west",element="cs1"} 1.0' in lines
    # Every sample follows its own family's TYPE line.
    assert lines.index('provgit_pending{network="west"} 0.0') < lines.index(
        "# TYPE provgit_element_synced gauge"
    )
