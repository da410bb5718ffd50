"""Import's pairing with a directory element, in memory (no processes): the
directory stands in for the MiCollab, and a call server's phone record joins
its entry by login id, else by DN, as the Reconcile wizard pairs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from provgit.drivers.base import StoredRecord
from provgit.importing.analysis import Analysis, analyse
from provgit.observe import Observation
from provgit.projection import project
from provgit.records import MANAGED_BY
from provgit.secrets import Fingerprinter
from provgit.source import read_directory
from provgit.validate import validate_source

NETWORK = """\
elements:
  - name: dir1
    type: directory
    ceid: 2
    driver: ldap
    connection: {url: "ldap://127.0.0.1:1"}
    directory: {base_dn: "ou=people,dc=example,dc=test"}
  - name: cs1
    type: mivb
    ceid: 11
    cluster: ottawa
"""
CENTRAL = """\
templates:
  - name: Desk and Softphone
    phones:
      - {label: Desk, device_type: "6930", primary: true}
      - {label: Soft, device_type: MiCollab}
roles:
  - {name: Engineer, template: Desk and Softphone}
departments:
  - {name: Sales}
"""
USERS = """\
users:
  - login_id: asmith
    first_name: Al
    last_name: Smith
    email: asmith@example.test
    department: Sales
    role: Engineer
    host: cs1
    services:
      - {dn: "2002"}
      - {dn: "2102", device_type: "6920"}
"""


def write(root: Path, users: bool) -> Path:
    root.mkdir(parents=True)
    (root / "provgit.yaml").write_text("version: 1\nnetwork: ids\n")
    (root / "network.yaml").write_text(NETWORK)
    (root / "central.yaml").write_text(CENTRAL)
    if users:
        (root / "people.yaml").write_text(USERS)
    return root


def held(tmp_path: Path) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """What dir1 and cs1 hold once asmith was provisioned (without provgit's mark)."""
    root = write(tmp_path / "truth", users=True)
    valid = validate_source(read_directory(root), None)
    assert valid.ok, valid.diagnostics
    target = project(valid.state, Fingerprinter(b"k", resolve_values=False))
    return {
        element: {
            c: {
                k: {f: v for f, v in fields.items() if f != MANAGED_BY}
                for k, fields in recs.items()
            }
            for c, recs in colls.items()
        }
        for element, colls in copy.deepcopy(target.records).items()
    }


def imported(tmp_path: Path, records: dict[str, dict[str, dict[str, dict[str, Any]]]]) -> Analysis:
    root = write(tmp_path / "config", users=False)
    source = read_directory(root)
    valid = validate_source(source, None)
    assert valid.ok, valid.diagnostics
    observed = {
        element: Observation(
            element,
            "running",
            1,
            {c: {k: _stored(c, k, f) for k, f in recs.items()} for c, recs in colls.items()},
        )
        for element, colls in records.items()
    }
    return analyse(valid.state, source, observed)


def _stored(collection: str, key: str, fields: dict[str, Any]) -> StoredRecord:
    return StoredRecord(collection, key, fields, 1)


def test_a_directory_entry_and_the_phone_record_pair_by_login_into_one_user(
    tmp_path: Path,
) -> None:
    analysis = imported(tmp_path, held(tmp_path))

    items = {(i.kind, i.key): i for i in analysis.items}
    user = items[("users", "asmith")]
    assert user.category == "automatic", (user.summary, user.conflicts)
    assert user.elements == ["dir1", "cs1"]
    assert user.data["email"] == "asmith@example.test"  # only the directory has it
    assert user.data["role"] == "Engineer"
    # Labels and device types come from the call server's record (the
    # directory has numbers only): the device the template gives is left out.
    assert user.data["services"] == [
        {"dn": "2002", "label": "Desk"},
        {"dn": "2102", "label": "Soft", "device_type": "6920"},
    ]


def test_a_phone_record_under_another_login_pairs_by_dn_for_review(tmp_path: Path) -> None:
    records = held(tmp_path)
    phone = records["cs1"]["users"].pop("asmith")
    phone["login_id"] = "al.smith"
    records["cs1"]["users"]["al.smith"] = phone

    analysis = imported(tmp_path, records)

    users = {i.key: i for i in analysis.items if i.kind == "users"}
    assert set(users) == {"asmith"}, set(users)
    assert users["asmith"].category == "review"
    assert any(c.what == "login id" for c in users["asmith"].conflicts)


def test_a_directory_dn_the_call_server_does_not_have_is_for_review(tmp_path: Path) -> None:
    records = held(tmp_path)
    records["dir1"]["users"]["asmith"]["primary_dn"] = "2999"

    analysis = imported(tmp_path, records)

    user = next(i for i in analysis.items if i.key == "asmith")
    assert user.category == "review"
    assert any(c.what == "phone data" for c in user.conflicts), user.conflicts
