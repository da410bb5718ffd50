"""Fixtures for the directory driver tests: a real slapd on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.directory import slapd


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[slapd.Slapd]:
    """A fresh, empty directory (one OU) per test; killed at teardown."""
    why = slapd.missing()
    if why:
        pytest.fail(why)
    server = slapd.start(tmp_path / "slapd")
    try:
        yield server
    finally:
        server.stop()
