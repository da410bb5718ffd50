"""`plan --claim` of imported entries whose RDN is not `cn=<login>`: a corporate
directory names its people `uid=jdoe` or `cn=John Doe`, not by the login
provgit would use for an entry it creates. The entry is found by the mapped
login attribute (sAMAccountName in the Active Directory preset, uid in the
OpenLDAP one), claimed where it is (no rename, no second entry), on the
entryCSN the plan read; later changes reach the same entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.apply.helpers import cli
from tests.directory import slapd
from tests.directory.test_claim import plan_json, rename, search
from tests.directory.test_driver import all_users, config, jdoe, run
from tests.directory.test_hostile_names import subtree
from tests.directory.test_import import config as import_config

from provgit.drivers.base import Driver, WriteOp
from provgit.drivers.ldap import MARKER, LdapDriver

pytestmark = pytest.mark.slow

AD = "active_directory"
OPENLDAP = "openldap"


def person(preset: str, rdn: str, login: str, first: str, last: str, dn: str) -> str:
    login_line = f"sAMAccountName: {login}" if preset == AD else f"uid: {login}"
    # Both with ipPhone (the AD schema's auxiliary class): the call server the import pairs.
    classes = "objectClass: inetOrgPerson\nobjectClass: adUser\n"
    extra = "ipPhone: cs1\n"
    return (
        f"dn: {rdn},{slapd.BASE_OU}\n{classes}cn: {first} {last}\nsn: {last}\n"
        f"givenName: {first}\n{login_line}\nmail: {login}@example.test\n"
        f"employeeType: Staff\ntelephoneNumber: {dn}\n{extra}"
    )


# Per preset: RDNs that are not the preset's own `<rdn attribute>=<login>`.
SEEDS = {
    AD: [
        ("uid=jdoe", "jdoe", "Jane", "Doe", "2001"),
        ("cn=Al Smith", "asmith", "Al", "Smith", "2002"),
    ],
    OPENLDAP: [
        ("cn=Jane Doe", "jdoe", "Jane", "Doe", "2001"),
        ("employeeNumber=1002", "asmith", "Al", "Smith", "2002"),
    ],
}


def openldap_config(root: Path) -> None:
    """The config's directory element in the OpenLDAP preset (the home element
    mapped to ipPhone, as an admin's override: the preset carries none)."""
    elements = root / "network" / "elements.yaml"
    text = elements.read_text()
    classes = f"      object_classes: [{', '.join(slapd.AD_OBJECT_CLASSES)}]\n"
    assert classes in text
    elements.write_text(
        text.replace(classes, "      preset: openldap\n      attributes: {host: ipPhone}\n")
    )


def login_attribute(preset: str) -> str:
    return "sAMAccountName" if preset == AD else "uid"


@pytest.mark.parametrize("preset", [AD, OPENLDAP])
def test_claim_finds_entries_by_their_login_attribute_and_keeps_their_dn(
    tmp_path: Path, directory: slapd.Slapd, preset: str
) -> None:
    seed = SEEDS[preset]
    ldif = "\n".join(person(preset, *s) for s in seed)
    if preset == OPENLDAP:
        ldif = ldif.replace("sn: Smith\n", "sn: Smith\nemployeeNumber: 1002\n", 1)
    directory.ldap("ldapadd", ldif)
    root = import_config(tmp_path, directory)
    if preset == OPENLDAP:
        openldap_config(root)
    imported = cli("import", "--into", str(root))
    assert imported.code == 0, imported.out + imported.err
    before = subtree(directory)

    claims = plan_json(root, "--claim")["dir1"]["operations"]
    assert {(op["action"], op["key"], op.get("claim")) for op in claims} == {
        ("modify", login, True) for _, login, *_ in seed
    }, claims
    applied = cli("apply", str(root), "--claim", "--yes")

    assert applied.code == 0, applied.out + applied.err
    assert subtree(directory) == before  # no entry added, none renamed
    attribute = login_attribute(preset)
    for rdn, login, *_ in seed:
        entry = search(directory, slapd.BASE_OU, f"({attribute}={login})")
        assert entry.startswith(f"dn: {rdn},{slapd.BASE_OU}"), entry
        assert f"description: {MARKER}" in entry, entry
    assert plan_json(root, "--claim")["dir1"]["operations"] == []

    # Claimed: a later change of the config reaches the same entry.
    rename(root, "jdoe", "Doe", "Doe-Smith")
    changed = cli("apply", str(root), "--yes")

    assert changed.code == 0, changed.out + changed.err
    entry = search(directory, slapd.BASE_OU, f"({attribute}=jdoe)")
    assert entry.startswith(f"dn: {seed[0][0]},{slapd.BASE_OU}"), entry
    assert "sn: Doe-Smith" in entry, entry
    assert subtree(directory) == before


@pytest.mark.parametrize("preset", [AD, OPENLDAP])
def test_an_entry_edited_after_the_plan_is_not_claimed_whatever_its_rdn(
    tmp_path: Path, directory: slapd.Slapd, preset: str
) -> None:
    rdn, login, first, last, dn = SEEDS[preset][0]
    directory.ldap("ldapadd", person(preset, rdn, login, first, last, dn))
    root = import_config(tmp_path, directory)
    if preset == OPENLDAP:
        openldap_config(root)
    assert cli("import", "--into", str(root)).code == 0
    saved = tmp_path / "claim.plan"
    made = cli("plan", str(root), "--claim", "--out", str(saved))
    assert made.code == 0, made.out + made.err
    directory.ldap(
        "ldapmodify",
        f"dn: {rdn},{slapd.BASE_OU}\nchangetype: modify\nreplace: sn\nsn: Edited-Meanwhile\n",
    )

    applied = cli("apply", str(saved), "--config", str(root))

    assert applied.code == 4, applied.out + applied.err
    entry = search(directory, slapd.BASE_OU, f"({login_attribute(preset)}={login})")
    assert "sn: Edited-Meanwhile" in entry and "description" not in entry, entry


def test_a_dn_remembered_from_an_earlier_read_that_is_gone_is_found_again_by_login(
    directory: slapd.Slapd,
) -> None:
    directory.ldap("ldapadd", person(AD, "uid=jdoe", "jdoe", "Jane", "Doe", "2001"))

    async def body(d: Driver) -> None:
        assert isinstance(d, LdapDriver)
        seen = (await all_users(d))["jdoe"]
        # What a driver of this process remembered of another directory at this address.
        d.seen.dns["jdoe"] = f"cn=jdoe,{slapd.BASE_OU}"
        done = await d.write(
            WriteOp("put", "users", "jdoe", jdoe(last_name="Doe-Smith"), seen.revision, claim=True)
        )
        assert done.ok and d.seen.dns["jdoe"] == f"uid=jdoe,{slapd.BASE_OU}"

    run(LdapDriver(config(directory)), body)
    entry = search(directory, slapd.BASE_OU, "(sAMAccountName=jdoe)")
    assert entry.startswith(f"dn: uid=jdoe,{slapd.BASE_OU}") and "sn: Doe-Smith" in entry, entry
