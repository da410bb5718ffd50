"""The `ldap` driver against a real slapd: the element contract for the users a
directory carries, conditional writes on entryCSN, paged full reads, refreshes
after out-of-band `ldapmodify`, and the faults (unreachable, wrong password)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.directory import slapd

from provgit.drivers.base import (
    ConflictError,
    Driver,
    DriverConfig,
    NotFoundError,
    TransportError,
    WriteOp,
)
from provgit.drivers.ldap import MARKER, LdapDriver
from provgit.drivers.registry import make_driver
from provgit.observe import observe
from provgit.records import MANAGED_BY


def config(
    server: slapd.Slapd | None,
    preset: str = "active_directory",
    password: str = slapd.ROOT_PW,
    url: str | None = None,
) -> DriverConfig:
    directory: dict[str, Any] = {
        "base_dn": slapd.BASE_OU,
        "bind_dn": slapd.ROOT_DN,
        "preset": preset,
    }
    if preset == "active_directory":
        directory["object_classes"] = slapd.AD_OBJECT_CLASSES
    settings = {
        "driver": "ldap",
        "url": url or (server.url if server else ""),
        "token": password,
        "timeout": 5.0,
        "directory": directory,
    }
    return DriverConfig("dir1", "directory", settings)


def run(driver: Driver, body: Callable[[Driver], Awaitable[None]]) -> None:
    async def go() -> None:
        try:
            await body(driver)
        finally:
            await driver.close()

    asyncio.run(go())


def jdoe(**extra: Any) -> dict[str, Any]:
    return {
        "login_id": "jdoe",
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jdoe@example.test",
        "department": "Sales",
        "location": "Ottawa",
        "primary_dn": "2001",
        "role": "Staff",
        "host": "cs1",
        MANAGED_BY: "provgit",
        **extra,
    }


def ldapsearch(server: slapd.Slapd, flt: str, *attrs: str) -> str:
    return subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-H", server.url, "-b", slapd.BASE_OU, flt, *attrs],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


async def all_users(d: Driver) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cursor: str | None = None
    while True:
        page = await d.list_records("users", cursor, 1000)
        out.update({r.key: r for r in page.records})
        cursor = page.next_cursor
        if cursor is None:
            return out


def test_registry_finds_the_ldap_driver_by_name(directory: slapd.Slapd) -> None:
    assert isinstance(make_driver(config(directory)), LdapDriver)


def test_create_writes_the_ad_mapping_with_the_marker_and_reads_back_the_same_fields(
    directory: slapd.Slapd,
) -> None:
    async def body(d: Driver) -> None:
        created = await d.write(WriteOp("put", "users", "jdoe", jdoe()))
        assert created.ok and created.revision
        users = await all_users(d)
        assert users["jdoe"].fields == jdoe()
        assert users["jdoe"].revision == created.revision
        with pytest.raises(ConflictError, match="already exists"):
            await d.write(WriteOp("put", "users", "jdoe", jdoe()))

    run(LdapDriver(config(directory)), body)
    entry = ldapsearch(directory, "(sAMAccountName=jdoe)")
    for line in (
        "sAMAccountName: jdoe",
        "givenName: Jane",
        "sn: Doe",
        "mail: jdoe@example.test",
        "department: Sales",
        "physicalDeliveryOfficeName: Ottawa",
        "telephoneNumber: 2001",
        "employeeType: Staff",
        "ipPhone: cs1",
        f"description: {MARKER}",
    ):
        assert line in entry


def test_openldap_preset_uses_inetorgperson_attributes(directory: slapd.Slapd) -> None:
    async def body(d: Driver) -> None:
        fields = jdoe()
        del fields["host"]  # the openldap preset carries no home element
        await d.write(WriteOp("put", "users", "jdoe", fields))
        assert (await all_users(d))["jdoe"].fields == fields

    run(LdapDriver(config(directory, preset="openldap")), body)
    entry = ldapsearch(directory, "(uid=jdoe)")
    assert "dn: uid=jdoe," in entry and "departmentNumber: Sales" in entry


def test_modify_at_its_revision_then_a_stale_revision_is_a_conflict(
    directory: slapd.Slapd,
) -> None:
    async def body(d: Driver) -> None:
        created = await d.write(WriteOp("put", "users", "jdoe", jdoe()))
        assert created.revision is not None
        fields = jdoe(department="Support", email=None)
        updated = await d.write(WriteOp("put", "users", "jdoe", fields, created.revision))
        assert updated.revision is not None and updated.revision > created.revision
        got = (await all_users(d))["jdoe"].fields
        assert got["department"] == "Support" and "email" not in got
        with pytest.raises(ConflictError, match="changed by another user"):
            await d.write(WriteOp("put", "users", "jdoe", jdoe(), created.revision))

    run(LdapDriver(config(directory)), body)


def test_out_of_band_ldapmodify_makes_provgit_write_a_conflict_not_an_overwrite(
    directory: slapd.Slapd,
) -> None:
    async def body(d: Driver) -> None:
        created = await d.write(WriteOp("put", "users", "jdoe", jdoe()))
        directory.ldap(
            "ldapmodify",
            f"dn: cn=jdoe,{slapd.BASE_OU}\nchangetype: modify\nreplace: mail\n"
            "mail: jane@elsewhere.test\n",
        )
        with pytest.raises(ConflictError, match="changed by another user"):
            await d.write(WriteOp("put", "users", "jdoe", jdoe(), created.revision))
        with pytest.raises(ConflictError):
            await d.write(WriteOp("delete", "users", "jdoe", None, created.revision))

    run(LdapDriver(config(directory)), body)
    assert "mail: jane@elsewhere.test" in ldapsearch(directory, "(sAMAccountName=jdoe)")


def test_delete_at_its_revision_and_of_an_absent_entry(directory: slapd.Slapd) -> None:
    async def body(d: Driver) -> None:
        created = await d.write(WriteOp("put", "users", "jdoe", jdoe()))
        assert (await d.write(WriteOp("delete", "users", "jdoe", None, created.revision))).ok
        assert await all_users(d) == {}
        with pytest.raises(NotFoundError):
            await d.write(WriteOp("delete", "users", "jdoe", None, created.revision))

    run(LdapDriver(config(directory)), body)


def test_entries_without_the_marker_are_read_but_never_changed(directory: slapd.Slapd) -> None:
    directory.ldap(
        "ldapadd",
        f"dn: cn=boss,{slapd.BASE_OU}\nobjectClass: inetOrgPerson\nobjectClass: adUser\n"
        "cn: boss\nsn: Boss\nsAMAccountName: boss\nemployeeType: Exec\n",
    )

    async def body(d: Driver) -> None:
        boss = (await all_users(d))["boss"]
        assert MANAGED_BY not in boss.fields and boss.fields["role"] == "Exec"
        with pytest.raises(ConflictError, match="not managed by provgit"):
            await d.write(WriteOp("put", "users", "boss", jdoe(login_id="boss"), boss.revision))
        with pytest.raises(ConflictError, match="not managed by provgit"):
            await d.write(WriteOp("delete", "users", "boss", None, boss.revision))
        with pytest.raises(ConflictError, match="not managed by provgit"):
            await d.write(WriteOp("put", "users", "boss", jdoe(login_id="boss")))

    run(LdapDriver(config(directory)), body)
    assert "employeeType: Exec" in ldapsearch(directory, "(sAMAccountName=boss)")


def test_paged_full_read_of_ten_thousand_entries(tmp_path: Any) -> None:
    n = 10_000
    seed = "\n".join(
        f"dn: cn=u{i:05d},{slapd.BASE_OU}\nobjectClass: inetOrgPerson\nobjectClass: adUser\n"
        f"cn: u{i:05d}\nsn: User{i}\ngivenName: U\nsAMAccountName: u{i:05d}\n"
        f"telephoneNumber: {20000 + i}\ndescription: {MARKER}\n"
        for i in range(n)
    )
    server = slapd.start(tmp_path / "big", seed)
    try:

        async def body(d: Driver) -> None:
            # Bounded, not benchmarked: a generous ceiling for a shared 2-core machine.
            observed = (await asyncio.wait_for(observe({"dir1": d}), 120))["dir1"]
            assert observed.ok, observed.error
            users = observed.records["users"]
            assert len(users) == n
            assert users["u04242"].fields["primary_dn"] == "24242"

        run(LdapDriver(config(server)), body)
    finally:
        server.stop()


def test_refresh_after_out_of_band_edits_sees_modify_add_and_delete(
    directory: slapd.Slapd,
) -> None:
    async def body(d: Driver) -> None:
        for key in ("jdoe", "asmith", "bwong"):
            await d.write(WriteOp("put", "users", key, jdoe(login_id=key)))
        first = (await observe({"dir1": d}))["dir1"]
        assert first.ok and set(first.records["users"]) == {"jdoe", "asmith", "bwong"}
        directory.ldap(
            "ldapmodify",
            f"dn: cn=jdoe,{slapd.BASE_OU}\nchangetype: modify\nreplace: department\n"
            f"department: Legal\n\ndn: cn=bwong,{slapd.BASE_OU}\nchangetype: delete\n\n"
            f"dn: cn=new1,{slapd.BASE_OU}\nchangetype: add\nobjectClass: inetOrgPerson\n"
            "objectClass: adUser\ncn: new1\nsn: New\nsAMAccountName: new1\n",
        )
        second = (await observe({"dir1": d}, previous={"dir1": first}))["dir1"]
        assert second.ok and second.incremental
        users = second.records["users"]
        assert users["jdoe"].fields["department"] == "Legal"
        assert "bwong" not in users
        assert users["new1"].fields == {"login_id": "new1", "last_name": "New"}
        # Nothing changed since: the refresh reads nothing back.
        third = (await observe({"dir1": d}, previous={"dir1": second}))["dir1"]
        assert third.ok and third.incremental and third.changed == frozenset()
        assert third.records["users"].keys() == users.keys()

    run(LdapDriver(config(directory)), body)


def test_unreachable_server_is_offline_not_a_crash() -> None:
    with slapd_port_closed() as port:

        async def body(d: Driver) -> None:
            observed = (await observe({"dir1": d}))["dir1"]
            assert observed.state == "offline"
            assert observed.error and "cannot reach" in observed.error

        run(LdapDriver(config(None, url=f"ldap://127.0.0.1:{port}")), body)


def test_wrong_bind_password_is_token_refused(directory: slapd.Slapd) -> None:
    wrong = "wrong-password-never-shown"

    async def body(d: Driver) -> None:
        observed = (await observe({"dir1": d}))["dir1"]
        assert observed.state == "unauthorized"
        assert observed.error and "token refused" in observed.error
        assert wrong not in observed.error and wrong not in repr(d)

    run(LdapDriver(config(directory, password=wrong)), body)


class slapd_port_closed:
    """A loopback port nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        return slapd.free_port()

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def tls_directory(tmp_path: Path) -> Iterator[slapd.Slapd]:
    server = slapd.start(tmp_path / "tls", tls=True)
    try:
        yield server
    finally:
        server.stop()


def tls_config(server: slapd.Slapd, url: str, start_tls: bool, ca: bool = True) -> DriverConfig:
    base = config(server, url=url)
    directory = dict(base.settings["directory"], start_tls=start_tls)
    if ca:
        directory["ca_file"] = str(server.ca_file)
    return DriverConfig(base.element, base.element_type, {**base.settings, "directory": directory})


@pytest.mark.parametrize("how", ["ldaps", "start_tls"])
def test_tls_connections_check_the_certificate_against_ca_file(
    tls_directory: slapd.Slapd, how: str
) -> None:
    url = tls_directory.tls_url if how == "ldaps" else tls_directory.url

    async def body(d: Driver) -> None:
        await d.write(WriteOp("put", "users", "jdoe", jdoe()))
        assert (await all_users(d))["jdoe"].fields == jdoe()

    run(LdapDriver(tls_config(tls_directory, url, how == "start_tls")), body)


def test_tls_with_an_untrusted_certificate_is_offline_not_sent_in_clear(
    tls_directory: slapd.Slapd,
) -> None:
    async def body(d: Driver) -> None:
        observed = (await observe({"dir1": d}))["dir1"]
        assert observed.state == "offline"
        assert observed.error and "certificate verify failed" in observed.error, observed.error

    run(LdapDriver(tls_config(tls_directory, tls_directory.tls_url, False, ca=False)), body)


def test_a_read_over_tls_with_an_untrusted_certificate_is_refused_not_sent_in_clear(
    tls_directory: slapd.Slapd,
) -> None:
    # The read path (python-ldap) checks the certificate as the write path does.
    async def body(d: Driver) -> None:
        with pytest.raises(TransportError, match="certificate did not verify"):
            await d.list_records("users")

    run(LdapDriver(tls_config(tls_directory, tls_directory.tls_url, False, ca=False)), body)
