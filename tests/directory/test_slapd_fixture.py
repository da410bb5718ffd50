"""The throwaway slapd holds the attributes MiCollab IDS maps, under both presets."""

from __future__ import annotations

import subprocess

from tests.directory import slapd


def test_slapd_takes_ad_and_inetorgperson_entries_and_stamps_them(
    directory: slapd.Slapd,
) -> None:
    directory.ldap(
        "ldapadd",
        f"dn: cn=jdoe,{slapd.BASE_OU}\nobjectClass: inetOrgPerson\nobjectClass: adUser\n"
        "cn: jdoe\nsn: Doe\nsAMAccountName: jdoe\nipPhone: cs1\ndepartment: Sales\n"
        "otherTelephone: 2001\nemployeeType: Staff\n\n"
        f"dn: uid=asmith,{slapd.BASE_OU}\nobjectClass: inetOrgPerson\nuid: asmith\n"
        "cn: asmith\nsn: Smith\ndepartmentNumber: Sales\nemployeeType: Staff\n",
    )
    out = subprocess.run(
        [
            "ldapsearch",
            "-x",
            "-LLL",
            "-H",
            directory.url,
            "-b",
            slapd.BASE_OU,
            "(employeeType=Staff)",
            "entryCSN",
            "ipPhone",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert out.count("entryCSN: ") == 2
    assert "ipPhone: cs1" in out
