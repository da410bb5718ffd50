"""A fleet runs every network in one process, whose environment holds the
fleet's journal password and every network's secrets. One network's config
(written by that network's people) names them as PINs: none may reach its
elements. It reads only what the fleet file maps for it, and that does land.
Real PostgreSQL, a real replica process, real git repositories."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from journal import pg

from .fleet_helpers import PASSWORD_ENV, FleetRig, fleet_status, make_fleet
from .helpers import commit_all
from .replica_helpers import wait_for

OTHER_PIN = "80417263"  # net-01's, from the process environment
OTHER_FILE_PIN = "91526384"  # net-01's, from a file the process can read
SETTLE = 180.0


@pytest.fixture(scope="module")
def pg_server() -> Iterator[pg.Server]:
    why = pg.missing()
    if why is not None:
        pytest.fail(f"PostgreSQL is needed for the fleet tests: {why}")
    with pg.running() as server:
        yield server


def _user(login: str, host: str, dn: int, pin: str) -> str:
    return (
        f"  - {{login_id: {login}, first_name: Spy, last_name: Person, role: Agent, "
        f'host: {host}, services: [{{dn: "{dn}"}}], {pin}}}\n'
    )


def _stored(element: Path) -> bytes:
    """The bytes of a network's element files: its call server's and MiCollab's (`m...`)."""
    for _ in range(50):
        files = sorted(element.parent.glob(f"*{element.name}*"))
        assert len(files) >= 2, files
        try:
            return b"".join(p.read_bytes() for p in files)
        except FileNotFoundError:
            # SQLite removed a -wal or -shm file between the listing and the read (a
            # connection closed, its log checkpointed into the database): read all again.
            continue
    raise AssertionError(f"{element}'s files kept changing under the read")


def _network(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found = next(n for n in doc["networks"] if n["name"] == name)
    assert found["document"] is not None
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_network_of_a_fleet_cannot_send_the_fleets_or_another_networks_secrets(
    tmp_path: Path,
    pg_server: pg.Server,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    # A lease no wait below outlives (not 4 s): one replica, nothing here tests a lapse.
    rig: FleetRig = make_fleet(tmp_path, 2, pg_server.new_database(), pg.PASSWORD, 20.0)
    # A replica left running outlives the test and holds the cluster's connections.
    request.addfinalizer(lambda: [w.stop() for w in rig.replicas if w.proc.poll() is None])
    spy_net, own_net = rig.nets
    pin_file = tmp_path / "net01-pin"
    pin_file.write_text(OTHER_FILE_PIN + "\n")
    pin_file.chmod(0o600)
    # net-01's own secrets, as the fleet file maps them for it alone.
    mapping = f"{{OWN_PIN: {{env: NET01_PIN}}, DESK_PIN: {{file: {json.dumps(str(pin_file))}}}}}"
    text = rig.file.read_text().replace("{name: net-01,", f"{{secrets: {mapping}, name: net-01,")
    rig.file.write_text(text)
    host = spy_net.element.stem
    (spy_net.work / "spies.yaml").write_text(
        "users:\n"
        + _user("spy1", host, 3901, f"voicemail_pin: {{env: {PASSWORD_ENV}}}")
        + _user("spy2", host, 3902, "voicemail_pin: {env: NET01_PIN}")
        + _user("spy3", host, 3903, f"voicemail_pin: {{file: {json.dumps(str(pin_file))}}}")
        + _user("spy4", host, 3904, "voicemail_pin: {env: OWN_PIN}")
    )
    commit_all(spy_net.work, "voicemail for the new staff")
    (own_net.work / "own.yaml").write_text(
        "users:\n"
        + _user("own1", own_net.element.stem, 3911, "voicemail_pin: {env: OWN_PIN}")
        + _user("own2", own_net.element.stem, 3912, "voicemail_pin: {env: DESK_PIN}")
    )
    commit_all(own_net.work, "own users with PINs")

    # The replica's environment: the journal password (fleet_helpers) and net-01's PIN.
    monkeypatch.setenv("NET01_PIN", OTHER_PIN)
    w = rig.start()

    def settled() -> dict[str, Any] | None:
        doc = fleet_status(w)
        spies, own = _network(doc, spy_net.name), _network(doc, own_net.name)
        ran = all(n["document"]["watch"]["last_run"] is not None for n in (spies, own))
        if not ran or own["status"] != "Sync Completed" or spies["status"] == "Synching":
            return None
        return doc

    doc = wait_for("both networks run to an end", settled, SETTLE)
    spies = _network(doc, spy_net.name)["document"]
    assert spies["in_sync"] is False and spies["status"] != "Sync Completed"
    spy_rows = {r["resource"]: r for r in spies["resources"] if r["resource"].startswith("spy")}
    assert set(spy_rows) == {"spy1", "spy2", "spy3", "spy4"}
    assert all(r["state"] == "distribution_error" for r in spy_rows.values()), spy_rows
    reasons = {e["resource"]: e["reason"] for e in spies["distribution_errors"]}
    assert set(reasons) == set(spy_rows)
    assert all("is not mapped for this network under secrets:" in r for r in reasons.values())
    stored = _stored(spy_net.element)
    for secret in (pg.PASSWORD, OTHER_PIN, OTHER_FILE_PIN):
        assert secret.encode() not in stored, secret
    # net-01 reads what the fleet file maps for it.
    own_doc = _network(doc, own_net.name)["document"]
    assert own_doc["status"] == "Sync Completed"
    own_stored = _stored(own_net.element)
    assert OTHER_PIN.encode() in own_stored and OTHER_FILE_PIN.encode() in own_stored
    for secret in (pg.PASSWORD, OTHER_PIN, OTHER_FILE_PIN):
        assert secret not in json.dumps(doc)
