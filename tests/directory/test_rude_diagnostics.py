"""A directory's diagnostic message reached the admin's terminal as sent:
when a server refused a bind (or a write) with words full of escape
sequences, the element's error (journaled, shown by `provgit status`,
`errors list`, the reconcile output and CI logs) carried them raw, so a
hostile or broken directory could write the clipboard (OSC 52) or draw a
fake "Sync Completed" over the line. HTTP elements' messages were already
made one bounded line (`wire.codec.element_text`); the directory's are now
too, on both clients (python-ldap's reads, ldap3's writes and info).
tests/support/flood_ldap.py `rude-bind`, a hostile server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.directory.test_answer_size import raised_by, serving

from provgit.drivers import ldap as ldap_driver
from provgit.wire.protocol import ElementError


@pytest.fixture
def rude_bind() -> Iterator[str]:
    yield from serving("rude-bind")


def _said(url: str, call: Callable[[Any], Any]) -> str:
    return raised_by(url, call, ElementError)


def _one_harmless_line(message: str) -> None:
    assert message.startswith("element dir1: "), message
    assert message.isprintable(), repr(message)  # no escape, no line break
    assert "<U+001B>]52;c;" in message and "<U+000D><U+001B>[2KSync Completed" in message


def test_the_writes_connection_shows_a_rude_bind_refusal_as_one_harmless_line(
    rude_bind: str,
) -> None:
    _one_harmless_line(_said(rude_bind, lambda d: d.info()))


def test_the_fast_reader_shows_a_rude_bind_refusal_as_one_harmless_line(rude_bind: str) -> None:
    assert ldap_driver.FastReader is not None, "python-ldap (fast-ldap) is installed here"
    page = lambda reader: reader.page("(cn=*)", ["cn"], 10, None)  # noqa: E731
    _one_harmless_line(_said(rude_bind, lambda d: d._read(page)))
