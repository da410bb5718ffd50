"""The call load an element reports: the simulator's profiles, `--call-load`,
the `call_load` fault key, and both drivers reading it from the element info."""

from __future__ import annotations

import asyncio
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
from openapi_core import OpenAPI

from provgit.drivers.base import CallLoad, DriverConfig
from provgit.drivers.embedded import EmbeddedDriver
from provgit.drivers.http import HttpDriver
from provgit.simulator.callload import PORTS, LoadProfile, ProfileError
from provgit.simulator.store import ElementStore

from .conftest import Simulator, start_simulator
from .test_openapi import Client, openapi  # noqa: F401  (the fixture)


def test_a_step_profile_gives_the_load_of_the_step_in_force() -> None:
    p = LoadProfile.parse("0:10, 60:85,300:15")
    assert [p.percent_at(t) for t in (0, 59.9, 60, 299, 300, 10**6)] == [10, 10, 85, 85, 15, 15]
    assert LoadProfile.parse("85").steps == ((0.0, 85.0),)
    # A profile starting later starts from no load.
    assert LoadProfile.parse("30:50").percent_at(10) == 0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "bad call-load profile"),
        ("lots", "bad call-load step 'lots'"),
        ("0:10,,60:20", "bad call-load profile"),
        ("0:10,60:120", "percent above 100"),
        ("60:10,30:20", "steps must go forward in time"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_step(text: str, words: str) -> None:
    with pytest.raises(ProfileError, match=words):
        LoadProfile.parse(text)


def test_the_store_places_a_profile_on_the_clock_it_is_given(tmp_path: Path) -> None:
    store = ElementStore(tmp_path / "ivr1.sqlite", name="ivr1", element_type="ivr")
    try:
        assert store.info(now=0).call_load is None
        store.set_call_load("0:10,60:85", now=1000.0)
        assert store.info(now=1030.0).call_load == CallLoad(PORTS // 10, 0, 10.0)
        assert store.info(now=1060.0).call_load == CallLoad(round(PORTS * 0.85), 0, 85.0)
        store.set_call_load("0:10,60:85", now=5000.0, keep=True)  # same profile: kept
        assert store.info(now=1060.0).call_load == CallLoad(round(PORTS * 0.85), 0, 85.0)
        store.set_call_load(None)
        assert store.info().call_load is None
    finally:
        store.close()


@pytest.fixture
def loaded(tmp_path: Path) -> Iterator[Simulator]:
    sim = start_simulator(tmp_path, "--admin", "--call-load", "85", element_type="ivr", name="ivr1")
    try:
        yield sim
    finally:
        sim.stop()


def _info_load(sim: Simulator) -> CallLoad | None:
    async def go() -> CallLoad | None:
        driver = HttpDriver(DriverConfig("ivr1", "ivr", {"url": sim.url, "token": sim.token}))
        try:
            return (await driver.info()).call_load
        finally:
            await driver.close()

    return asyncio.run(go())


@pytest.mark.slow
def test_the_http_driver_reads_the_load_the_fault_endpoint_sets(
    loaded: Simulator,
    openapi: OpenAPI,  # noqa: F811
) -> None:
    assert _info_load(loaded) == CallLoad(round(PORTS * 0.85), 0, 85.0)
    c = Client(loaded, openapi)
    # The element info and the faults, as the OpenAPI document says.
    s, info = c.call("GET", "/v1/element")
    assert s == 200 and info["call_load"]["load_percent"] == 85
    s, faults = c.call("POST", "/admin/faults", {"call_load": "0:15"})
    assert s == 200 and faults["call_load"] == "0:15"
    assert _info_load(loaded) == CallLoad(round(PORTS * 0.15), 0, 15.0)
    s, faults = c.call("POST", "/admin/faults", {"call_load": None})
    assert s == 200 and faults["call_load"] is None
    assert _info_load(loaded) is None
    s, info = c.call("GET", "/v1/element")
    assert s == 200 and info["call_load"] is None


@pytest.mark.slow
# A text the schema allows but no profile (percent above 100): 422; the wrong type: 400.
@pytest.mark.parametrize(
    ("bad", "code"), [("0:10,60:500", 422), ({"percent": 5}, 400), (True, 400)]
)
def test_a_bad_call_load_fault_is_refused_and_changes_nothing(
    loaded: Simulator, bad: object, code: int
) -> None:
    with pytest.raises(urllib.error.HTTPError) as e:
        loaded.admin("/admin/faults", {"call_load": bad})
    assert e.value.code == code
    assert "call" in e.value.read().decode()
    assert _info_load(loaded) == CallLoad(round(PORTS * 0.85), 0, 85.0)


@pytest.mark.slow
def test_serve_refuses_a_bad_call_load_profile(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="--call-load: bad call-load step 'x'"):
        start_simulator(tmp_path, "--call-load", "x", element_type="ivr", name="ivr1")


def test_the_embedded_driver_reports_its_call_load_setting(tmp_path: Path) -> None:
    path = tmp_path / "ivr1.sqlite"

    async def load(**settings: object) -> CallLoad | None:
        driver = EmbeddedDriver(DriverConfig("ivr1", "ivr", {"path": str(path), **settings}))
        try:
            return (await driver.info()).call_load
        finally:
            await driver.close()

    assert asyncio.run(load()) is None
    assert asyncio.run(load(call_load="40")) == CallLoad(round(PORTS * 0.4), 0, 40.0)
    # Kept in the element file: a driver without the setting reads it too.
    assert asyncio.run(load()) == CallLoad(round(PORTS * 0.4), 0, 40.0)


@pytest.mark.slow
def test_element_fault_changes_the_call_load_of_a_running_simulator(loaded: Simulator) -> None:
    from click.testing import CliRunner

    from provgit.cli import main

    env = {"PROVGIT_ELEMENT_TOKEN": loaded.token or ""}
    runner = CliRunner()
    r = runner.invoke(main, ["element", "fault", "--url", loaded.url, "--call-load", "30"], env=env)
    assert r.exit_code == 0, r.output
    assert _info_load(loaded) == CallLoad(round(PORTS * 0.3), 0, 30.0)
    r = runner.invoke(
        main, ["element", "fault", "--url", loaded.url, "--call-load", "none"], env=env
    )
    assert r.exit_code == 0 and _info_load(loaded) is None
