"""`provgit import` from a corporate directory: entries an admin added with
`ldapadd` (not provgit's: no marker) become users in YAML, their role from
`employeeType`, and the config that comes out validates and plans empty
against the directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.apply.helpers import cli
from tests.directory import slapd

from provgit.source import read_directory
from provgit.validate import validate_source

pytestmark = pytest.mark.slow

SETTINGS = "version: 1\nnetwork: ids\nreports: {git_notes: false}\n"
CENTRAL = """\
templates:
  - name: Desk
    phones:
      - {label: Desk, device_type: "6920", primary: true}
  - name: Desk and Softphone
    phones:
      - {label: Desk, device_type: "6930", primary: true}
      - {label: Soft, device_type: MiCollab}
roles:
  - {name: Staff, template: Desk}
  - {name: Engineer, template: Desk and Softphone}
departments:
  - {name: Sales, description: Bay Street sales office}
"""


def elements(server: slapd.Slapd, password_file: Path, read_only_cs: bool = False) -> str:
    return (
        "elements:\n"
        "  - name: dir1\n"
        "    type: directory\n"
        "    ceid: 2\n"
        "    driver: ldap\n"
        "    connection:\n"
        f"      url: {server.url}\n"
        f"      token: {{file: {password_file}}}\n"
        "    directory:\n"
        f"      base_dn: {slapd.BASE_OU}\n"
        f"      bind_dn: {slapd.ROOT_DN}\n"
        f"      object_classes: [{', '.join(slapd.AD_OBJECT_CLASSES)}]\n"
        "  - name: cs1\n"
        "    type: mivb\n"
        "    ceid: 11\n"
        "    cluster: ottawa\n" + ("    read_only: true\n" if read_only_cs else "")
    )


def entry(login: str, first: str, last: str, role: str, dns: list[str], **more: str) -> str:
    lines = [
        f"dn: cn={login},{slapd.BASE_OU}",
        "objectClass: inetOrgPerson",
        "objectClass: adUser",
        f"cn: {first} {last}",
        f"sn: {last}",
        f"givenName: {first}",
        f"sAMAccountName: {login}",
        f"mail: {login}@example.test",
        f"employeeType: {role}",
        "ipPhone: cs1",
        f"telephoneNumber: {dns[0]}",
        *(f"otherTelephone: {dn}" for dn in dns[1:]),
        *(f"{attribute}: {value}" for attribute, value in more.items()),
    ]
    return "\n".join(lines) + "\n"


CORPORATE = "\n".join(
    [
        entry("jdoe", "Jane", "Doe", "Staff", ["2001"], department="Sales"),
        entry(
            "asmith",
            "Al",
            "Smith",
            "Engineer",
            ["2002", "2102"],
            department="Sales",
            physicalDeliveryOfficeName="Toronto",
        ),
        entry("bwong", "Bo", "Wong", "Staff", ["2003"]),
        # employeeType names no role: nobody can say which template it gets.
        entry("cguest", "Cy", "Guest", "Contractor", ["2004"]),
    ]
)


def config(tmp_path: Path, server: slapd.Slapd, read_only_cs: bool = False) -> Path:
    root = tmp_path / "config"
    (root / "network").mkdir(parents=True)
    (root / "provgit.yaml").write_text(SETTINGS)
    (root / "roles-and-templates.yaml").write_text(CENTRAL)
    password = tmp_path / "bind-password"
    password.write_text(slapd.ROOT_PW + "\n")
    (root / "network" / "elements.yaml").write_text(elements(server, password, read_only_cs))
    return root


def plan_ops(root: Path) -> dict[str, list[tuple[str, str, str]]]:
    ran = cli("plan", str(root), "--format", "json")
    assert ran.code in (0, 2), ran.out + ran.err
    return {
        e["element"]: [(op["action"], op["collection"], op["key"]) for op in e["operations"]]
        for e in json.loads(ran.out)["elements"]
    }


def test_import_from_a_directory_gives_users_that_plan_empty_against_it(
    tmp_path: Path, directory: slapd.Slapd
) -> None:
    directory.ldap("ldapadd", CORPORATE)
    root = config(tmp_path, directory)

    ran = cli("import", "--into", str(root), "--format", "json")

    # The entry whose employeeType names no role stays out (Unresolved: exit 4).
    assert ran.code == 4, ran.out + ran.err
    report = json.loads(ran.out)
    unresolved = {i["key"]: i for i in report["items"] if i["category"] == "unresolved"}
    assert set(unresolved) == {"cguest"}, unresolved
    assert "Contractor" in json.dumps(unresolved["cguest"])
    valid = validate_source(read_directory(root), None)
    assert valid.ok, valid.diagnostics
    users = valid.state.of("users")
    assert set(users) == {"jdoe", "asmith", "bwong"}
    al = users["asmith"]
    assert (al.first_name, al.last_name, al.email) == ("Al", "Smith", "asmith@example.test")
    assert (al.role, al.host, al.department, al.location) == ("Engineer", "cs1", "Sales", "Toronto")
    assert [s.dn for s in al.services] == ["2002", "2102"]
    # A location only the directory names becomes a record; Sales keeps its YAML.
    assert set(valid.state.of("locations")) == {"Toronto"}
    assert valid.state.of("departments")["Sales"].description == "Bay Street sales office"

    # Nothing to write to the directory: the entries already say what the YAML says.
    ops = plan_ops(root)
    assert ops["dir1"] == [], ops["dir1"]
    # The call server is empty: it is what gets the users' phones.
    assert {action for action, _, _ in ops["cs1"]} == {"add"}
    # Importing again finds nothing new.
    again = cli("import", "--into", str(root), "--format", "json")
    assert json.loads(again.out)["summary"]["written"] == 0, again.out


def test_import_from_a_directory_beside_a_read_only_call_server_plans_nothing(
    tmp_path: Path, directory: slapd.Slapd
) -> None:
    directory.ldap("ldapadd", CORPORATE)
    root = config(tmp_path, directory, read_only_cs=True)
    assert cli("import", "--into", str(root)).code == 4

    ran = cli("plan", str(root), "--detailed-exitcode")

    assert ran.code == 0, ran.out + ran.err
    assert "0 to add, 0 to modify, 0 to delete" in ran.out, ran.out
    assert "read-only element" in ran.out, ran.out
