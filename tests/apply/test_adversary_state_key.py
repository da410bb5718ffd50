"""The state directory's signing key is never sent to an element as a PIN.

With the state directory outside the config (`--state-dir`), a PIN reference
`{file: STATE_DIR/secret.key}` passed every check: the key that signs plans
went to the MiCollab as a voicemail PIN, where its admins (and its database)
could read it and sign plans of their own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import cli, read_store

SETTINGS = "version: 1\nnetwork: keyed\n"

NET = """\
elements:
  - {{name: mcl, type: micollab, ceid: 1}}
  - {{name: cs1, type: mivb, ceid: 2, cluster: east, admin_group: east}}
classes_of_service:
  - {{number: 1, comment: Default}}
templates:
  - name: Basic
    phones: [{{label: Desk, device_type: "6920", primary: true}}]
    cos: {{day: 1}}
roles:
  - {{name: Agent, template: Basic}}
users:
  - login_id: eve
    first_name: Eve
    last_name: Person
    role: Agent
    host: cs1
    services: [{{dn: "2001"}}]
    voicemail_pin: {{file: {pin}}}
"""


def test_the_state_directory_key_is_refused_as_a_pin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    root, state = tmp_path / "config", tmp_path / "state"
    root.mkdir()
    (root / "provgit.yaml").write_text(SETTINGS)
    (root / "net.yaml").write_text(NET.format(pin=state / "secret.key"))
    # A first run with nothing secret makes the state directory and its key.
    first = cli("plan", str(root), "--state-dir", str(state))
    key = (state / "secret.key").read_text().strip()
    assert key, first.out + first.err

    r = cli("reconcile", str(root), "--state-dir", str(state))
    assert r.code != 0, r.out + r.err
    stores = {n: read_store(state / "elements" / f"{n}.sqlite") for n in ("mcl", "cs1")}
    assert "eve" not in stores["mcl"].get("users", {})  # not half-provisioned either
    assert "eve" not in stores["cs1"].get("users", {})
    everything = json.dumps(stores) + r.out + r.err
    assert key not in everything
    for f in state.rglob("*"):
        if f.is_file() and f.name != "secret.key":
            assert key.encode() not in f.read_bytes(), f
    assert "signing key" in r.out + r.err
