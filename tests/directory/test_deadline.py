"""The `ldap` driver's deadline: a directory that answers one byte at a time,
each inside the read timeout (a trickling TCP proxy in front of a real slapd
on 127.0.0.1), never holds a call, and so a run, longer than
`connection.request_deadline`: the call fails with an error naming that
setting, and the driver refuses further calls at once (the next run connects anew)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.apply.helpers import cli, cli_process
from tests.directory import slapd
from tests.directory.test_driver import config, jdoe, ldapsearch
from tests.directory.test_end_to_end import directory_config

from provgit.drivers.base import TransportError, WriteOp
from provgit.drivers.ldap import LdapDriver

TRICKLE = Path(__file__).parent.parent / "support" / "trickle_tcp.py"
# slapd's answer to a simple bind: what passes at once, before the trickle.
BIND_ANSWER = 14


@pytest.fixture
def trickling(directory: slapd.Slapd) -> Iterator[str]:
    """ldap://… of `directory` behind a proxy that trickles after the bind."""
    with _trickle(directory, 0.5, BIND_ANSWER) as url:
        yield url


@pytest.fixture
def trickling_bind(directory: slapd.Slapd) -> Iterator[str]:
    """ldap://… of `directory` behind a proxy that trickles from the first byte:
    the bind's answer (14 bytes) takes 28 s, each byte well inside the read timeout."""
    with _trickle(directory, 2.0, 0) as url:
        yield url


@contextlib.contextmanager
def _trickle(directory: slapd.Slapd, period: float, passed: int) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(TRICKLE), "127.0.0.1", str(directory.port), str(period), str(passed)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded: the process answers or dies
        assert line.startswith("listening on "), line
        yield "ldap://" + line.split()[-1]  # 127.0.0.1:PORT
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _through(url: str, deadline: float, timeout: float = 5.0) -> LdapDriver:
    c = config(None, url=url)  # the directory behind the proxy
    settings = {**c.settings, "timeout": timeout, "request_deadline": deadline}
    return LdapDriver(dataclasses.replace(c, settings=settings))


def _worker_ends(d: LdapDriver, within: float) -> None:
    """The driver's worker thread (stuck in a read past the deadline) ends
    within `within` seconds of the call's failure: it was cut, not left to the trickle."""
    end = time.monotonic() + within
    for t in [t for t in threading.enumerate() if t.name == f"ldap {d.name}"]:
        t.join(max(0.0, end - time.monotonic()))
        assert not t.is_alive(), "the call's thread still reads the trickling bind"


@pytest.mark.parametrize("call", ["read", "write"])
def test_a_bind_answered_a_byte_at_a_time_is_cut_at_the_request_deadline(
    directory: slapd.Slapd, trickling_bind: str, call: str
) -> None:
    """Reads bind through python-ldap, writes through ldap3: each bind is cut
    at the deadline (its socket shut), not left to the 28 s trickle or to the
    30 s `timeout`, so its thread lets go of the element's lock at once."""

    async def body() -> None:
        d = _through(trickling_bind, 2.0, timeout=30.0)
        try:
            with pytest.raises(TransportError, match="request_deadline"):
                if call == "read":
                    await asyncio.wait_for(d.list_records("users"), 120)
                else:
                    await asyncio.wait_for(d.write(WriteOp("put", "users", "jdoe", jdoe())), 120)
            _worker_ends(d, 8.0)
        finally:
            await asyncio.wait_for(d.close(), 60)

    asyncio.run(body())
    # Nothing was written through the trickle.
    assert "jdoe" not in ldapsearch(directory, "(objectClass=*)", "sAMAccountName")


def test_a_trickling_directory_fails_a_full_read_after_the_request_deadline(
    directory: slapd.Slapd, trickling: str
) -> None:
    async def body() -> None:
        direct = LdapDriver(config(directory))
        try:
            await direct.write(WriteOp("put", "users", "jdoe", jdoe()))
        finally:
            await direct.close()
        d = _through(trickling, 2.0)
        try:
            with pytest.raises(TransportError, match="request_deadline"):
                # The guard only keeps a broken build from hanging the suite.
                await asyncio.wait_for(d.list_records("users"), 120)
            with pytest.raises(TransportError, match="request_deadline"):
                await asyncio.wait_for(d.changes(0), 120)  # refused, not asked again
        finally:
            await asyncio.wait_for(d.close(), 60)

    asyncio.run(body())


def test_a_trickling_directory_fails_a_write_after_the_request_deadline(
    directory: slapd.Slapd, trickling: str
) -> None:
    async def body() -> None:
        d = _through(trickling, 2.0)
        try:
            with pytest.raises(TransportError, match="request_deadline"):
                await asyncio.wait_for(d.write(WriteOp("put", "users", "jdoe", jdoe())), 120)
        finally:
            await asyncio.wait_for(d.close(), 60)

    asyncio.run(body())


@pytest.mark.slow
def test_a_run_against_a_trickling_directory_ends_with_a_clear_error_and_it_is_not_in_sync(
    tmp_path: Path,
    directory: slapd.Slapd,
    trickling: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    port = int(trickling.rsplit(":", 1)[1])
    root = directory_config(tmp_path, dataclasses.replace(directory, port=port), monkeypatch)
    elements = root / "network" / "elements.yaml"
    text = elements.read_text()
    at = f"      url: ldap://127.0.0.1:{port}\n"
    assert at in text
    elements.write_text(text.replace(at, at + "      request_deadline: 3\n"))
    # The guard only keeps a broken build from hanging the suite.
    r = cli_process("reconcile", str(root), "--format", "json", timeout=180)
    assert r.code != 0, r.out
    assert "connection.request_deadline" in r.out + r.err, r.out + r.err
    run = {e["element"]: e["status"] for e in json.loads(r.out)["elements"]}
    assert run["dir1"] != "Sync Completed", r.out
    status = json.loads(cli("status", str(root), "--format", "json").out)
    assert status["elements"]["dir1"]["status"] != "Sync Completed"
