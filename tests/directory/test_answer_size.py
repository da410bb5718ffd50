"""A directory that ignores the paged results control and answers a search
with entries without end (tests/support/flood_ldap.py, a hostile server on
127.0.0.1) is cut as the answer arrives: past the page's size (RFC 2696: a
server sends at most that many) or its bytes, the read fails with an error
naming the element, its connection goes, and nothing of it is taken for the
element's records; before, the reader held the whole answer (memory without
bound) until the request deadline. Both read paths: python-ldap and ldap3."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from tests.apply.helpers import cli, cli_process
from tests.directory import slapd
from tests.directory.test_driver import config
from tests.directory.test_end_to_end import directory_config

from provgit.drivers import ldap as ldap_driver
from provgit.drivers import ldap_pages, ldap_read
from provgit.drivers.base import TransportError
from provgit.drivers.ldap import LdapDriver

FLOOD = Path(__file__).parent.parent / "support" / "flood_ldap.py"
# Generous: the old reader took the flood in until this ran out.
DEADLINE = 30.0


@pytest.fixture
def flooding() -> Iterator[str]:
    """ldap://127.0.0.1:PORT of a server whose searches never end."""
    yield from serving()


def serving(*args: str) -> Iterator[str]:
    """ldap://127.0.0.1:PORT of tests/support/flood_ldap.py run with `args`."""
    proc = subprocess.Popen(
        [sys.executable, str(FLOOD), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded: the process answers or dies
        assert line.startswith("listening on "), line
        yield "ldap://" + line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _driver(url: str) -> LdapDriver:
    c = config(None, url=url)
    settings = {**c.settings, "timeout": DEADLINE, "request_deadline": DEADLINE}
    return LdapDriver(dataclasses.replace(c, settings=settings))


def raised_by(
    url: str,
    call: Callable[[LdapDriver], Awaitable[object]],
    error: type[Exception] = TransportError,
) -> str:
    """The message of the `error` that `call` on a driver for `url` raises
    (the driver closed after)."""

    async def body() -> str:
        d = _driver(url)
        try:
            with pytest.raises(error) as e:
                # The guard only keeps a broken build from hanging the suite.
                await asyncio.wait_for(call(d), 3 * DEADLINE)
            return str(e.value)
        finally:
            await asyncio.wait_for(d.close(), 60)

    return asyncio.run(body())


async def _refused_page(url: str, size: int) -> str:
    d = _driver(url)
    try:
        with pytest.raises(TransportError) as e:
            # The guard only keeps a broken build from hanging the suite.
            await asyncio.wait_for(d.list_records("users", None, size), 3 * DEADLINE)
        return str(e.value)
    finally:
        await asyncio.wait_for(d.close(), 60)


@pytest.mark.parametrize("reads", ["python-ldap", "ldap3"])
def test_a_page_answered_without_end_is_cut_past_its_size(
    flooding: str, reads: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if reads == "ldap3":
        monkeypatch.setattr(ldap_driver, "FastReader", None)
    message = asyncio.run(_refused_page(flooding, 100))
    assert message.startswith("element dir1: the directory answered more than"), message
    assert "request_deadline" not in message, message
    # ldap3 holds an answer whole before decoding it: its messages are counted
    # on the socket; python-ldap's entry by entry.
    assert "more than 100 entries" in message and "paged results" in message, message


def test_a_refresh_answered_without_end_is_cut_past_its_bytes(
    flooding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A content synchronisation has no page size: its answer is cut at the
    answer budget (256 MiB; 1 MiB here, not to send that much in a test)."""
    monkeypatch.setattr(ldap_pages, "MAX_ANSWER_BYTES", 2**20, raising=False)
    monkeypatch.setattr(ldap_read, "MAX_ANSWER_BYTES", 2**20, raising=False)

    async def body() -> None:
        d = _driver(flooding)
        reader = d._reader
        assert isinstance(reader, ldap_read.Reader)
        try:
            with pytest.raises(TransportError, match="more than 1 MiB to one search"):
                await asyncio.wait_for(
                    d._read(lambda r: reader.sync("(cn=*)", ["cn"], None)), 3 * DEADLINE
                )
        finally:
            await asyncio.wait_for(d.close(), 60)

    asyncio.run(body())


@pytest.fixture
def fat_base() -> Iterator[str]:
    """ldap://127.0.0.1:PORT of a server answering a base search with one
    entry that never ends (a message whose length says 2 GiB)."""
    yield from serving("fat-base")


def test_a_base_entry_without_end_is_cut_past_its_bytes(fat_base: str) -> None:
    """ldap3 holds a message whole before decoding it: a base search (the
    element's info, a write's read-back) answered with one endless entry was
    held until the request deadline. Cut at a call's budget (1 MiB: an entry,
    a DN or two), counted as it arrives."""

    message = raised_by(fat_base, lambda d: d.info())
    assert "element dir1: the directory answered more than 1 MiB" in message, message
    assert "request_deadline" not in message, message


@pytest.mark.slow
def test_a_run_against_a_flooding_directory_says_why_and_it_is_not_in_sync(
    tmp_path: Path, directory: slapd.Slapd, flooding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    port = int(flooding.rsplit(":", 1)[1])
    root = directory_config(tmp_path, dataclasses.replace(directory, port=port), monkeypatch)
    elements = root / "network" / "elements.yaml"
    text = elements.read_text()
    at = f"      url: ldap://127.0.0.1:{port}\n"
    assert at in text
    elements.write_text(text.replace(at, at + f"      request_deadline: {DEADLINE:g}\n"))
    # The guard only keeps a broken build from hanging the suite.
    r = cli_process("reconcile", str(root), "--format", "json", timeout=180)
    assert r.code != 0, r.out
    said = r.out + r.err
    assert "the directory answered more than" in said, said
    assert "request_deadline" not in said, said
    run = {e["element"]: e["status"] for e in json.loads(r.out)["elements"]}
    assert run["dir1"] != "Sync Completed", r.out
    status = json.loads(cli("status", str(root), "--format", "json").out)
    dir1 = status["elements"]["dir1"]
    assert dir1["status"] != "Sync Completed" and dir1["observed"] is False, dir1
    # What a page of 5,000 (observe's) may hold, and why the read stopped.
    assert "more than 5000 entries" in dir1["detail"], dir1
    assert "paged results control" in dir1["detail"], dir1
