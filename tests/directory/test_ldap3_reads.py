"""Without python-ldap (the `fast-ldap` extra, which needs libldap's headers to
install) the ldap driver reads through ldap3: the same answers, page by page,
refreshes and faults included. Each check below runs against a real slapd with
the python-ldap reader switched off."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.directory import slapd, test_driver

from provgit.drivers import ldap as ldap_driver
from provgit.drivers.base import Driver, WriteOp
from provgit.drivers.ldap import LdapDriver
from provgit.drivers.ldap_read3 import Reader as Ldap3Reader


@pytest.fixture
def ldap3_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ldap_driver, "FastReader", None)


def test_the_driver_falls_back_to_ldap3_reads(directory: slapd.Slapd, ldap3_reads: None) -> None:
    assert isinstance(LdapDriver(test_driver.config(directory))._reader, Ldap3Reader)


@pytest.mark.parametrize(
    "check",
    [
        test_driver.test_create_writes_the_ad_mapping_with_the_marker_and_reads_back_the_same_fields,
        test_driver.test_refresh_after_out_of_band_edits_sees_modify_add_and_delete,
        test_driver.test_wrong_bind_password_is_token_refused,
        test_driver.test_entries_without_the_marker_are_read_but_never_changed,
    ],
    ids=lambda f: f.__name__.removeprefix("test_"),
)
def test_ldap3_reads_answer_as_python_ldap_reads(
    check: Callable[[slapd.Slapd], None], directory: slapd.Slapd, ldap3_reads: None
) -> None:
    check(directory)


def test_ldap3_reads_page_through_every_entry(directory: slapd.Slapd, ldap3_reads: None) -> None:
    keys = [f"u{i:02}" for i in range(25)]

    async def body(d: Driver) -> None:
        for key in keys:
            assert (await d.write(WriteOp("put", "users", key, test_driver.jdoe(login_id=key)))).ok
        pages, seen, cursor = 0, [], None
        while True:
            page = await d.list_records("users", cursor, 10)
            pages += 1
            seen += [r.key for r in page.records]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == 3 and sorted(seen) == keys

    test_driver.run(LdapDriver(test_driver.config(directory)), body)
