"""Logins holding LDAP's special characters, on a real slapd: each is escaped in
the DN (RFC 4514) and in every filter (RFC 4515), so it names exactly one
entry directly under provgit's OU, and a login shaped like a DN (`x,ou=other`)
or like a filter (`*`) never reaches another entry. Validation refuses the
characters MiCollab does not take in a login (comma, space, control
characters, backslash) at file:line:col; the driver escapes them anyway,
since entries read from a directory (import, claim) carry what it holds."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from tests.directory import slapd
from tests.directory.test_directory_validation import network
from tests.directory.test_driver import all_users, config, jdoe, run
from tests.validate.base import TELEPHONY, validate

from provgit.drivers.base import ConflictError, Driver, NotFoundError, WriteOp
from provgit.drivers.ldap import MARKER, LdapDriver
from provgit.drivers.ldap_names import child_dn, filter_value, is_child, rdns

OTHERS = f"ou=other,{slapd.BASE_OU}"
# Each special character of RFC 4514 (DNs) and RFC 4515 (filters), alone and
# at the places where it means something (a leading `#` or space, a trailing space).
HOSTILE = [
    "x,ou=other",
    "x,ou=other,dc=example,dc=test",
    "a=b",
    "a+sn=b",
    'say "hi"',
    "back\\slash",
    "#start",
    "st*r",
    "*",
    "(x)",
    "x)(sAMAccountName=*",
    "nul\0byte",
    " lead",
    "trail ",
    "semi;colon",
    "<angle>",
    "ü-latin1",
]


def subtree(server: slapd.Slapd) -> list[str]:
    """Every DN in the directory (the whole suffix, not only the OU)."""
    how = ["-x", "-LLL", "-o", "ldif-wrap=no", "-H", server.url]
    auth = ["-D", slapd.ROOT_DN, "-w", slapd.ROOT_PW]
    out = subprocess.run(
        ["ldapsearch", *how, *auth, "-b", slapd.SUFFIX, "(objectClass=*)", "1.1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    dns = [line[4:] for line in out.splitlines() if line.startswith("dn: ")]
    # ldapsearch writes a DN that is not plain text (NUL, a leading space) in base64.
    dns += [
        base64.b64decode(line[5:]).decode("utf-8")
        for line in out.splitlines()
        if line.startswith("dn:: ")
    ]
    return sorted(dns)


def seed_neighbours(server: slapd.Slapd) -> None:
    """An OU inside provgit's and an entry `cn=x` in it: where `x,ou=other` would land."""
    server.ldap(
        "ldapadd",
        f"dn: {OTHERS}\nobjectClass: organizationalUnit\nou: other\n\n"
        f"dn: cn=x,{OTHERS}\nobjectClass: inetOrgPerson\nobjectClass: adUser\n"
        f"cn: x\nsn: Neighbour\nsAMAccountName: x\ndescription: {MARKER}\n",
    )


@pytest.mark.parametrize("login", HOSTILE)
def test_an_escaped_login_stays_one_entry_directly_under_the_ou(login: str) -> None:
    dn = child_dn("cn", login, slapd.BASE_OU)
    assert is_child(dn, slapd.BASE_OU), dn
    assert len(rdns(dn)) == len(rdns(slapd.BASE_OU)) + 1
    for c in "*()\0":
        assert c not in filter_value(login)


def test_dns_outside_or_below_the_ou_are_not_children() -> None:
    base = slapd.BASE_OU
    assert not is_child(f"cn=x,{OTHERS}", base)
    assert not is_child(f"cn=x,ou=people,{slapd.SUFFIX.replace('example', 'other')}", base)
    assert not is_child(base, base)
    assert is_child(f"CN=x,OU=People, {slapd.SUFFIX}", base)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["active_directory", "openldap"])
def test_hostile_logins_are_created_modified_and_deleted_only_under_the_ou(
    directory: slapd.Slapd, preset: str
) -> None:
    seed_neighbours(directory)
    before = subtree(directory)
    revisions: dict[str, int] = {}

    def fields(login: str, **extra: str | None) -> dict[str, str | None]:
        f = jdoe(login_id=login, **extra)
        if preset == "openldap":
            del f["host"]
        return f

    async def create(d: Driver) -> None:
        for login in HOSTILE:
            done = await d.write(WriteOp("put", "users", login, fields(login)))
            assert done.ok and done.revision is not None, login
            revisions[login] = done.revision
        users = await all_users(d)
        assert set(users) == set(HOSTILE)  # one level: not the neighbour below
        for login in HOSTILE:
            assert users[login].fields == fields(login), login

    run(LdapDriver(config(directory, preset)), create)
    created = subtree(directory)
    assert len(created) == len(before) + len(HOSTILE)
    assert all(is_child(dn, slapd.BASE_OU) for dn in set(created) - set(before))

    # A fresh driver (no read yet): each entry is found by its escaped login.
    async def change_then_delete(d: Driver) -> None:
        for login in HOSTILE:
            op = WriteOp("put", "users", login, fields(login, department="Legal"), revisions[login])
            changed = await d.write(op)
            assert changed.ok and changed.revision is not None, login
            deleted = await d.write(WriteOp("delete", "users", login, None, changed.revision))
            assert deleted.ok, login
        assert await all_users(d) == {}

    run(LdapDriver(config(directory, preset)), change_then_delete)
    assert subtree(directory) == before
    neighbour = subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-H", directory.url, "-b", OTHERS, "(cn=x)", "sn"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "sn: Neighbour" in neighbour


@pytest.mark.slow
@pytest.mark.parametrize("login", ["*", "a*", "(x)", "x)(sAMAccountName=*", "\\2a"])
def test_a_login_shaped_like_a_filter_never_finds_another_entry(
    directory: slapd.Slapd, login: str
) -> None:
    made: dict[str, int] = {}

    async def seed(d: Driver) -> None:
        for other in ("alice", "abby"):
            done = await d.write(WriteOp("put", "users", other, jdoe(login_id=other)))
            assert done.revision is not None
            made[other] = done.revision

    run(LdapDriver(config(directory)), seed)
    before = subtree(directory)

    async def body(d: Driver) -> None:
        # No entry has this login: a modify, a delete and a claim find none of the others.
        for rev in made.values():
            with pytest.raises(NotFoundError):
                await d.write(WriteOp("put", "users", login, jdoe(login_id=login), rev))
            with pytest.raises(NotFoundError):
                await d.write(WriteOp("delete", "users", login, None, rev))
            with pytest.raises(NotFoundError):
                await d.write(WriteOp("put", "users", login, jdoe(login_id=login), rev, claim=True))
        users = await all_users(d)
        assert set(users) == {"alice", "abby"}
        assert all(users[k].revision == made[k] for k in made)

    run(LdapDriver(config(directory)), body)
    assert subtree(directory) == before


@pytest.mark.slow
def test_two_entries_with_one_login_are_a_conflict_not_a_guess(directory: slapd.Slapd) -> None:
    before = subtree(directory)
    directory.ldap(
        "ldapadd",
        "".join(
            f"dn: {rdn},{slapd.BASE_OU}\nobjectClass: inetOrgPerson\nobjectClass: adUser\n"
            f"cn: {rdn[3:]}\nsn: Twin\nsAMAccountName: twin\ndescription: {MARKER}\n\n"
            for rdn in ("cn=twin one", "cn=twin two")
        ),
    )

    async def body(d: Driver) -> None:
        with pytest.raises(ConflictError, match="2 entries"):
            await d.write(WriteOp("delete", "users", "twin", None, 1))

    run(LdapDriver(config(directory)), body)
    assert len(subtree(directory)) == len(before) + 2  # both twins stay


def _with_login(login_yaml: str) -> str:
    return TELEPHONY.replace("login_id: alice", f"login_id: {login_yaml}")


@pytest.mark.parametrize(
    ("login_yaml", "says"),
    [
        ('"x,ou=other"', "a comma"),
        ('"nul\\0byte"', "a control character"),
        ('" lead"', "a space"),
        ('"back\\\\slash"', "looks like a file path"),
    ],
)
def test_validation_refuses_logins_micollab_does_not_take_at_file_line_col(
    tmp_path: Path, login_yaml: str, says: str
) -> None:
    found = validate(
        tmp_path, {"network.yaml": network(), "telephony.yaml": _with_login(login_yaml)}
    )
    bad = [d for d in found.diagnostics if d.severity == "error"]
    assert bad, login_yaml
    d = bad[0]
    assert d.location.file == "telephony.yaml" and d.location.line and d.location.column
    assert says in d.message and d.hint, (d.message, d.hint)


@pytest.mark.parametrize("login", ["a+b", "#start", "st*r", "(x)", "a=b", "o'hara"])
def test_logins_micollab_takes_pass_validation_and_are_escaped_by_the_driver(
    tmp_path: Path, login: str
) -> None:
    found = validate(
        tmp_path, {"network.yaml": network(), "telephony.yaml": _with_login(f'"{login}"')}
    )
    assert found.ok, [f"{d.location}: {d.message}" for d in found.diagnostics]
