"""Adversary 10: a directory answering python-ldap's bind, or its root DSE
search (does it offer content synchronisation?), with one message whose
length says 2 GiB and whose bytes never end (tests/support/flood_ldap.py,
a hostile server on 127.0.0.1). libldap reads a message whole before
python-ldap sees it: it was held until the request deadline. liblber's bound
on a message (`drivers/ldap_incoming.py`) refuses it as its header arrives,
with an error naming the element and the bound, not the deadline."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.directory.test_answer_size import raised_by, serving

from provgit.drivers import ldap as ldap_driver

SAID = (
    "element dir1: the directory sent one message of more than 256 MiB (an entry, or the "
    "answer to the bind or to the root DSE search): not read further"
)


@pytest.fixture
def fat_base() -> Iterator[str]:
    yield from serving("fat-base")


@pytest.fixture
def fat_bind() -> Iterator[str]:
    yield from serving("fat-bind")


def _refused(url: str, call: Callable[[Any], object]) -> str:
    assert ldap_driver.FastReader is not None, "python-ldap (fast-ldap) is installed here"

    return raised_by(url, lambda d: d._read(call))


def test_a_root_dse_answered_with_one_endless_message_is_refused_at_its_header(
    fat_base: str,
) -> None:
    message = _refused(fat_base, lambda reader: reader.can_sync())
    assert message == SAID, message


def test_a_bind_answered_with_one_endless_message_is_refused_at_its_header(
    fat_bind: str,
) -> None:
    message = _refused(fat_bind, lambda reader: reader.page("(cn=*)", ["cn"], 10, None))
    assert message == SAID, message


def test_a_bind_on_the_writes_connection_answered_without_end_is_cut_as_it_arrives(
    fat_bind: str,
) -> None:
    """ldap3 (the writes' connection, and `info`) holds a message whole too:
    its bind's answer is counted on the socket as a call's answer is."""

    message = raised_by(fat_bind, lambda d: d.info())
    assert "element dir1: the directory answered more than 1 MiB" in message, message
    assert "request_deadline" not in message, message
