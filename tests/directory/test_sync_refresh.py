"""Refreshes through the content synchronisation control (RFC 4533,
refreshOnly with the cookie of the last refresh) on a real slapd with the
syncprov overlay: a refresh reads the changed entries only (slapd's own
`stats` log counts what each search sent), deletions made out of band are
still seen, and a cookie the directory cannot continue from (a restart that
lost the session log, a directory restored to an older state, a cookie it
does not take) is a full read or a complete present phase, never "no
changes". Without the overlay the driver lists the OU's names as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.directory import slapd
from tests.directory.test_driver import config, jdoe, run
from tests.directory.test_end_to_end import directory_config, entries
from tests.watch.helpers import start_watch

from provgit.drivers.base import Driver, WriteOp
from provgit.drivers.ldap import MARKER, LdapDriver
from provgit.observe import Observation, observe

pytestmark = pytest.mark.slow

N = 300


def seed(n: int = N) -> str:
    return "\n".join(
        f"dn: cn=u{i:04d},{slapd.BASE_OU}\nobjectClass: inetOrgPerson\nobjectClass: adUser\n"
        f"cn: u{i:04d}\nsn: User{i}\nsAMAccountName: u{i:04d}\ndescription: {MARKER}\n"
        for i in range(n)
    )


def edit_out_of_band(server: slapd.Slapd) -> None:
    """Modify u0001, delete u0002, add new1: an admin's ldapmodify."""
    server.ldap(
        "ldapmodify",
        f"dn: cn=u0001,{slapd.BASE_OU}\nchangetype: modify\nreplace: sn\nsn: Edited\n\n"
        f"dn: cn=u0002,{slapd.BASE_OU}\nchangetype: delete\n\n"
        f"dn: cn=new1,{slapd.BASE_OU}\nchangetype: add\nobjectClass: inetOrgPerson\n"
        "objectClass: adUser\ncn: new1\nsn: New\nsAMAccountName: new1\n",
    )


async def refreshed(d: Driver, previous: Observation) -> Observation:
    got = (await observe({"dir1": d}, previous={"dir1": previous}))["dir1"]
    assert got.ok, got.error
    return got


async def started(d: Driver) -> Observation:
    """A full read, then the first refresh (which takes the cookie)."""
    first = (await observe({"dir1": d}))["dir1"]
    assert first.ok and not first.incremental, first.error
    return await refreshed(d, first)


@pytest.fixture
def big(tmp_path: Path, request: pytest.FixtureRequest) -> slapd.Slapd:
    syncprov = getattr(request, "param", True)
    server = slapd.start(tmp_path / "slapd", seed(), syncprov=syncprov, stats=True)
    request.addfinalizer(server.stop)
    return server


@pytest.mark.parametrize("big", [True, False], ids=["syncprov", "no-syncprov"], indirect=True)
def test_a_refresh_sees_out_of_band_modify_add_and_delete_with_or_without_the_control(
    big: slapd.Slapd,
) -> None:
    async def body(d: Driver) -> None:
        before = await started(d)
        assert len(before.records["users"]) == N
        edit_out_of_band(big)
        after = await refreshed(d, before)
        users = after.records["users"]
        assert after.incremental
        assert users["u0001"].fields["last_name"] == "Edited"
        assert "u0002" not in users
        assert users["new1"].fields == {"login_id": "new1", "last_name": "New"}
        assert len(users) == N
        # Nothing changed since: the next refresh reads nothing back.
        again = await refreshed(d, after)
        assert again.incremental and again.changed == frozenset()
        assert again.records["users"].keys() == users.keys()

    run(LdapDriver(config(big)), body)


@pytest.mark.parametrize("big", [True, False], ids=["syncprov", "no-syncprov"], indirect=True)
def test_with_the_control_a_refresh_reads_the_changes_not_every_user(
    big: slapd.Slapd, request: pytest.FixtureRequest
) -> None:
    syncprov = request.node.callspec.params["big"]
    sent: list[int] = []

    async def body(d: Driver) -> None:
        before = await started(d)
        edit_out_of_band(big)
        mark = len(big.searches())
        await refreshed(d, before)
        sent.extend(big.searches()[mark:])

    run(LdapDriver(config(big)), body)
    assert sent, "no search reached slapd"
    if syncprov:
        # The modified and the added entry (the deletion is a UUID, no entry).
        assert max(sent) <= 2, sent
    else:
        assert max(sent) >= N - 1, sent  # every name in the OU


def test_a_deletion_before_a_restart_that_lost_the_session_log_is_seen(big: slapd.Slapd) -> None:
    async def body(d: Driver) -> None:
        before = await started(d)
        big.ldap("ldapmodify", f"dn: cn=u0007,{slapd.BASE_OU}\nchangetype: delete\n")
        big.restart()
        # The connections the driver kept died with the server: reads open new ones.
        got = await refreshed(d, before)
        assert "u0007" not in got.records["users"]
        assert len(got.records["users"]) == N - 1

    run(LdapDriver(config(big)), body)


@pytest.mark.parametrize(
    "cookie",
    [
        b"rid=000,csn=20991231235959.000000Z#000000#000#000000",  # newer than the directory
        b"rid=000,csn=not-a-csn",  # not taken: the server sends everything
        b"rid=123",  # no state at all
    ],
    ids=["newer-than-the-directory", "malformed", "no-csn"],
)
def test_a_cookie_the_directory_cannot_continue_from_is_a_full_read_not_no_changes(
    big: slapd.Slapd, cookie: bytes
) -> None:
    async def body(d: Driver) -> None:
        assert isinstance(d, LdapDriver)
        before = await started(d)
        big.ldap("ldapmodify", f"dn: cn=u0009,{slapd.BASE_OU}\nchangetype: delete\n")
        d.seen.cookie = cookie
        got = await refreshed(d, before)
        assert "u0009" not in got.records["users"]
        assert len(got.records["users"]) == N - 1
        assert not got.incremental  # read again in full
        # ... and the refreshes after it are incremental again.
        later = await refreshed(d, await refreshed(d, got))
        assert later.incremental and later.changed == frozenset()

    run(LdapDriver(config(big)), body)


def test_an_entry_provgit_wrote_then_deleted_out_of_band_is_seen_gone(
    big: slapd.Slapd,
) -> None:
    async def body(d: Driver) -> None:
        before = await started(d)
        made = await d.write(WriteOp("put", "users", "jdoe", jdoe()))
        assert made.ok
        seen = await refreshed(d, before)
        assert seen.records["users"]["jdoe"].revision == made.revision
        big.ldap("ldapmodify", f"dn: cn=jdoe,{slapd.BASE_OU}\nchangetype: delete\n")
        got = await refreshed(d, seen)
        assert "jdoe" not in got.records["users"]
        # A deletion alone moves the element's revision on (else: "unchanged").
        assert got.revision is not None and seen.revision is not None
        assert got.revision > seen.revision

    run(LdapDriver(config(big)), body)


def test_watch_corrects_an_entry_deleted_out_of_band(
    tmp_path: Path, directory: slapd.Slapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = directory_config(tmp_path, directory, monkeypatch)
    w = start_watch(
        [str(root), "--resync-seconds", "0", "--debounce-ms", "50", "--drift", "correct"]
    )
    try:
        w.wait_log("run_finished", timeout=120)
        users = [
            line.split(": ", 1)[1]
            for line in entries(directory, f"(description={MARKER})", "sAMAccountName").splitlines()
            if line.startswith("sAMAccountName: ")
        ]
        assert users, "the first run wrote no entry"
        victim, other = users[0], users[1]

        # A change first, so the run after the deletion refreshes with a cookie.
        settings = root / "provgit.yaml"
        mark = w.mark()
        settings.write_text(settings.read_text() + "\n# touched 1\n")
        w.wait_log("run_finished", after=mark, timeout=120)

        directory.ldap("ldapmodify", f"dn: cn={victim},{slapd.BASE_OU}\nchangetype: delete\n")
        mark = w.mark()
        settings.write_text(settings.read_text() + "# touched 2\n")
        found = w.wait_log("drift", lambda e: e.get("element") == "dir1", after=mark, timeout=120)
        w.wait_log("run_finished", after=mark, timeout=120)

        assert found["corrected"] is True, found
        assert f"sAMAccountName: {victim}" in entries(directory, f"(sAMAccountName={victim})")
        assert f"sAMAccountName: {other}" in entries(directory, f"(sAMAccountName={other})")
        doc = w.status()
        assert doc["elements"]["dir1"]["sync"] in ("completed", "in_sync"), json.dumps(
            doc["elements"]["dir1"]
        )
    finally:
        problems = w.shutdown_problems()
        assert not problems, problems
