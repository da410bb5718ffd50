"""Taking ownership of directory entries provgit did not create (`--claim`):
after `provgit import` the entries say what the config says but lack
provgit's marker, so the driver refuses to change them. `plan --claim` shows
a modify that takes ownership of each entry the config has (same login,
in the element's OU, not marked); apply writes it only where the entry is
still as planned (entryCSN), so an edit made in the directory meanwhile is a
conflict and nothing is overwritten. Entries outside the OU are never read."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.apply.helpers import cli
from tests.directory import slapd
from tests.directory.test_driver import all_users, config, jdoe, run
from tests.directory.test_import import CORPORATE
from tests.directory.test_import import config as import_config

from provgit.drivers.base import ConflictError, Driver, WriteOp
from provgit.drivers.ldap import MARKER, LdapDriver

pytestmark = pytest.mark.slow

OTHERS = f"ou=others,{slapd.SUFFIX}"
# The same login as a config user, outside the element's OU: never claimed.
OUTSIDE = (
    f"dn: {OTHERS}\nobjectClass: organizationalUnit\nou: others\n\n"
    f"dn: cn=jdoe,{OTHERS}\nobjectClass: inetOrgPerson\nobjectClass: adUser\n"
    "cn: Jane Doe\nsn: Outside\nsAMAccountName: jdoe\nemployeeType: Staff\n"
)


def search(server: slapd.Slapd, base: str, flt: str) -> str:
    return subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-H", server.url, "-b", base, flt],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


def marked(server: slapd.Slapd) -> set[str]:
    out = search(server, slapd.BASE_OU, f"(description={MARKER})")
    return {line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("sAMAccount")}


def plan_json(root: Path, *extra: str) -> dict[str, dict[str, object]]:
    ran = cli("plan", str(root), "--format", "json", *extra)
    assert ran.code in (0, 2), ran.out + ran.err
    return {e["element"]: e for e in json.loads(ran.out)["elements"]}


def imported(tmp_path: Path, server: slapd.Slapd) -> Path:
    server.ldap("ldapadd", CORPORATE + "\n" + OUTSIDE)
    root = import_config(tmp_path, server)
    assert cli("import", "--into", str(root)).code == 4  # cguest stays Unresolved
    return root


def rename(root: Path, login: str, last: str, new: str) -> None:
    for f in root.rglob("*.yaml"):
        text = f.read_text()
        if f"login_id: {login}" in text and f"last_name: {last}" in text:
            f.write_text(text.replace(f"last_name: {last}", f"last_name: {new}", 1))
            return
    raise AssertionError(f"no YAML has {login} with last_name {last}")


def test_import_then_claim_then_a_later_config_change_reaches_the_entry(
    tmp_path: Path, directory: slapd.Slapd
) -> None:
    root = imported(tmp_path, directory)
    # Without --claim: nothing to do, and a change is refused by the directory.
    assert plan_json(root)["dir1"]["operations"] == []
    claims = plan_json(root, "--claim")["dir1"]["operations"]
    assert {(op["action"], op["key"], op.get("claim")) for op in claims} == {
        ("modify", login, True) for login in ("jdoe", "asmith", "bwong")
    }, claims
    shown = cli("plan", str(root), "--claim")
    assert "claim: not provgit's yet, takes ownership" in shown.out, shown.out
    assert marked(directory) == set()  # planning wrote nothing

    applied = cli("apply", str(root), "--claim", "--yes")

    assert applied.code == 0, applied.out + applied.err
    assert marked(directory) == {"jdoe", "asmith", "bwong"}
    # Not in the config (Unresolved at import): not claimed.
    assert "description" not in search(directory, slapd.BASE_OU, "(sAMAccountName=cguest)")
    # Outside the OU: untouched.
    outside = search(directory, OTHERS, "(sAMAccountName=jdoe)")
    assert "sn: Outside" in outside and "description" not in outside, outside
    assert plan_json(root, "--claim")["dir1"]["operations"] == []

    rename(root, "jdoe", "Doe", "Doe-Smith")
    changed = cli("apply", str(root), "--yes")

    assert changed.code == 0, changed.out + changed.err
    entry = search(directory, slapd.BASE_OU, "(sAMAccountName=jdoe)")
    assert "sn: Doe-Smith" in entry and f"description: {MARKER}" in entry, entry
    assert "sn: Outside" in search(directory, OTHERS, "(sAMAccountName=jdoe)")


def test_without_claim_a_change_to_an_imported_entry_is_refused_and_says_how(
    tmp_path: Path, directory: slapd.Slapd
) -> None:
    root = imported(tmp_path, directory)
    rename(root, "jdoe", "Doe", "Doe-Smith")

    applied = cli("apply", str(root), "--yes")

    assert applied.code == 4, applied.out + applied.err
    assert "sn: Doe\n" in search(directory, slapd.BASE_OU, "(sAMAccountName=jdoe)")
    errors = cli("errors", "list", "-C", str(root), "--format", "json")
    assert "--claim" in errors.out + errors.err, errors.out + errors.err


def test_an_entry_edited_between_plan_and_apply_is_not_claimed_or_overwritten(
    tmp_path: Path, directory: slapd.Slapd
) -> None:
    root = imported(tmp_path, directory)
    saved = tmp_path / "claim.plan"
    made = cli("plan", str(root), "--claim", "--out", str(saved))
    assert made.code == 0, made.out + made.err
    directory.ldap(
        "ldapmodify",
        f"dn: cn=jdoe,{slapd.BASE_OU}\nchangetype: modify\nreplace: sn\nsn: Edited-Meanwhile\n",
    )

    applied = cli("apply", str(saved), "--config", str(root))

    # jdoe is a conflict (a distribution error); the entries as planned are claimed.
    assert applied.code == 4, applied.out + applied.err
    entry = search(directory, slapd.BASE_OU, "(sAMAccountName=jdoe)")
    assert "sn: Edited-Meanwhile" in entry and "description" not in entry, entry
    assert marked(directory) == {"asmith", "bwong"}
    errors = json.loads(cli("errors", "list", "-C", str(root), "--format", "json").out)
    assert [(e["key"], e["error_type"]) for e in errors["errors"]] == [("jdoe", "conflict")]
    # A saved plan cannot be widened at apply time.
    again = cli("apply", str(saved), "--config", str(root), "--claim")
    assert again.code != 0 and "--claim" in again.err, again.out + again.err


def test_the_driver_claims_only_at_the_planned_entry_csn(directory: slapd.Slapd) -> None:
    directory.ldap(
        "ldapadd",
        f"dn: cn=jdoe,{slapd.BASE_OU}\nobjectClass: inetOrgPerson\nobjectClass: adUser\n"
        "cn: Jane Doe\nsn: Doe\nsAMAccountName: jdoe\ndescription: hired 2019\n",
    )

    async def body(d: Driver) -> None:
        seen = (await all_users(d))["jdoe"]
        directory.ldap(
            "ldapmodify",
            f"dn: cn=jdoe,{slapd.BASE_OU}\nchangetype: modify\nreplace: sn\nsn: Edited\n",
        )
        with pytest.raises(ConflictError, match="since the plan read it"):
            await d.write(WriteOp("put", "users", "jdoe", jdoe(), seen.revision, claim=True))
        assert "description: hired 2019" in search(directory, slapd.BASE_OU, "(cn=jdoe)")
        now = (await all_users(d))["jdoe"]
        done = await d.write(WriteOp("put", "users", "jdoe", jdoe(), now.revision, claim=True))
        assert done.ok and done.revision is not None and done.revision > now.revision
        # Claimed: an ordinary conditional modify now goes through.
        later = await d.write(WriteOp("put", "users", "jdoe", jdoe(sn=None), done.revision))
        assert later.ok
        # A claim of an entry already provgit's is a conflict, not a second marker.
        with pytest.raises(ConflictError):
            await d.write(WriteOp("put", "users", "jdoe", jdoe(), later.revision, claim=True))

    run(LdapDriver(config(directory)), body)
    entry = search(directory, slapd.BASE_OU, "(cn=jdoe)")
    # The admin's description stays beside the marker.
    assert "description: hired 2019" in entry and f"description: {MARKER}" in entry, entry
