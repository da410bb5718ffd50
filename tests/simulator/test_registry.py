"""make_driver picks built-ins by name, then entry points, and says what it knows."""

from __future__ import annotations

from pathlib import Path

import pytest

from provgit.drivers.base import Driver, DriverConfig
from provgit.drivers.embedded import EmbeddedDriver
from provgit.drivers.http import HttpDriver
from provgit.drivers.registry import UnknownDriverError, known_drivers, make_driver


def test_embedded_is_the_default_and_stores_under_state_dir(tmp_path: Path) -> None:
    driver = make_driver(DriverConfig("cs1", "mivb", {}, state_dir=str(tmp_path)))
    assert isinstance(driver, EmbeddedDriver) and isinstance(driver, Driver)
    assert driver.path == tmp_path / "elements" / "cs1.sqlite"
    assert not driver.path.exists()  # created on first use, not on construction


def test_driver_setting_or_argument_picks_http() -> None:
    config = DriverConfig("cs1", "mivb", {"driver": "http", "url": "http://127.0.0.1:1"})
    assert isinstance(make_driver(config), HttpDriver)
    assert isinstance(
        make_driver(DriverConfig("x", "ivr", {"url": "http://h"}), "http"), HttpDriver
    )


def test_http_driver_without_url_says_so() -> None:
    with pytest.raises(ValueError, match="needs a 'url' setting"):
        make_driver(DriverConfig("cs1", "mivb", {"driver": "http"}))


def test_unknown_driver_lists_the_known_ones() -> None:
    with pytest.raises(UnknownDriverError) as info:
        make_driver(DriverConfig("cs1", "mivb", {"driver": "snmp"}))
    message = str(info.value)
    assert "unknown driver 'snmp'" in message and "embedded, http" in message
    assert {"embedded", "http"} <= set(known_drivers())


def test_http_driver_repr_never_shows_the_token() -> None:
    config = DriverConfig("cs1", "mivb", {"url": "http://127.0.0.1:1", "token": "s3cr3t"})
    assert "s3cr3t" not in repr(make_driver(config))
