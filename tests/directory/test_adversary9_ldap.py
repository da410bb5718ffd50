"""Adversary 9: a directory answering a base-object search (the driver's own
calls: the base's existence, a written entry's entryCSN, a login's DN) with
one enormous entry (tests/support/flood_ldap.py --huge-base, a hostile server
on 127.0.0.1). ldap3 holds a message whole before decoding it: the answer is
counted as it arrives and cut past the call's budget, with an error naming the
element; before, the whole entry was taken in (memory without bound but the
request deadline)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.directory.test_answer_size import raised_by, serving

from provgit.drivers import ldap_pages

HUGE = 8 * 2**20  # one entry's value: far past a call's budget


@pytest.fixture
def huge_base() -> Iterator[str]:
    """ldap://127.0.0.1:PORT of a server answering a base search with one huge entry."""
    yield from serving("--huge-base", str(HUGE))


def test_a_base_search_answered_with_one_enormous_entry_is_cut_as_it_arrives(
    huge_base: str,
) -> None:
    message = raised_by(huge_base, lambda d: d.info())
    assert ldap_pages.CALL_BYTES == 2**20
    assert message == (
        "element dir1: the directory answered more than 1 MiB to one search: not read further"
    ), message
