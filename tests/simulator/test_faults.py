"""Faults for real: simulator processes killed, slowed, locked, stopped, guarded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from provgit.drivers.base import (
    DriverConfig,
    LockedError,
    OfflineError,
    RefusedError,
    TransportError,
    UnauthorizedError,
    WriteOp,
)
from provgit.drivers.http import HttpDriver

from .conftest import TOKEN, Simulator, free_port_closed, start_simulator

pytestmark = pytest.mark.slow


def http(url: str, token: str | None = TOKEN, **settings: object) -> HttpDriver:
    return HttpDriver(DriverConfig("cs1", "mivb", {"url": url, "token": token, **settings}))


def test_simulator_killed_mid_request_gives_transport_error(tmp_path: Path) -> None:
    sim = start_simulator(tmp_path, "--latency-ms", "5000")
    try:

        async def main() -> None:
            driver = http(sim.url, timeout=10)
            try:
                task = asyncio.create_task(
                    driver.write(WriteOp("put", "departments", "Sales", {"name": "Sales"}))
                )
                # The write has landed; its answer is held by the latency.
                await _landed(sim.db, "departments", "Sales")
                assert not task.done()
                os.kill(sim.proc.pid, signal.SIGKILL)
                with pytest.raises(TransportError):
                    await asyncio.wait_for(task, 15)
                with pytest.raises(TransportError, match="cannot connect"):
                    await driver.write(WriteOp("put", "cos", "1", {}))
            finally:
                await driver.close()

        asyncio.run(main())
        assert sim.proc.wait(timeout=5) == -signal.SIGKILL
    finally:
        sim.stop()


def test_latency_over_the_driver_timeout_gives_transport_error(simulator: Simulator) -> None:
    # An answer held for a minute: only the driver's own timeout (two attempts
    # of 0.3 s) can end the call within the 20 s this test waits.
    simulator.admin("/admin/faults", {"latency_ms": 60_000})

    async def main() -> None:
        driver = http(simulator.url, timeout=0.3, retries=1)
        try:
            with pytest.raises(TransportError, match=r"did not answer within 0\.3 s"):
                await asyncio.wait_for(driver.info(), 20)
        finally:
            await driver.close()

    asyncio.run(main())


def test_injected_server_errors_give_transport_error(simulator: Simulator) -> None:
    simulator.admin("/admin/faults", {"error_rate": 1})

    async def main() -> None:
        driver = http(simulator.url, retries=1)
        try:
            with pytest.raises(TransportError, match="HTTP 500"):
                await driver.info()
            with pytest.raises(TransportError):
                await driver.write_batch([WriteOp("put", "cos", "1", {})])
        finally:
            await driver.close()

    asyncio.run(main())


def test_wrong_or_missing_token_gives_unauthorized(simulator: Simulator) -> None:
    async def main() -> None:
        for token in ("wrong", None):
            driver = http(simulator.url, token=token)
            try:
                with pytest.raises(UnauthorizedError):
                    await driver.info()
                with pytest.raises(UnauthorizedError):
                    await driver.write(WriteOp("put", "cos", "1", {}))
            finally:
                await driver.close()

    asyncio.run(main())


def test_revoked_token_fault_refuses_the_right_token_until_lifted(simulator: Simulator) -> None:
    faults = simulator.admin("/admin/faults", {"token_revoked": True})
    assert faults["token_revoked"] is True

    async def main(refused: bool) -> None:
        driver = http(simulator.url)
        try:
            if refused:
                with pytest.raises(UnauthorizedError):
                    await driver.info()
                with pytest.raises(UnauthorizedError):
                    await driver.write_batch([WriteOp("put", "cos", "1", {})])
            else:
                assert (await driver.write(WriteOp("put", "cos", "1", {}))).ok
        finally:
            await driver.close()

    asyncio.run(main(refused=True))
    simulator.admin("/admin/faults", {"token_revoked": False})
    asyncio.run(main(refused=False))


def test_nobody_listening_gives_transport_error() -> None:
    async def main() -> None:
        driver = http(f"http://127.0.0.1:{free_port_closed()}", retries=1)
        try:
            with pytest.raises(TransportError, match="cannot connect"):
                await driver.info()
        finally:
            await driver.close()

    asyncio.run(main())


def test_refused_key_fault_is_a_refusal_naming_the_form(simulator: Simulator) -> None:
    simulator.admin("/admin/faults", {"refuse": [{"collection": "cos", "key": "9"}]})

    async def main() -> None:
        driver = http(simulator.url)
        try:
            with pytest.raises(RefusedError) as info:
                await driver.write(WriteOp("put", "cos", "9", {}))
            assert info.value.refusals[0].form == "Class of Service Options"
            assert (await driver.write(WriteOp("put", "cos", "8", {}))).ok
        finally:
            await driver.close()

    asyncio.run(main())


def test_started_locked_or_offline_answers_so(tmp_path: Path) -> None:
    locked = start_simulator(tmp_path, "--locked", name="locked")
    offline = start_simulator(tmp_path, "--offline", name="offline")
    try:

        async def main() -> None:
            a, b = http(locked.url), http(offline.url)
            try:
                with pytest.raises(LockedError):
                    await a.write(WriteOp("put", "cos", "1", {}))
                with pytest.raises(OfflineError):
                    await b.list_records("cos")
            finally:
                await a.close()
                await b.close()

        asyncio.run(main())
    finally:
        locked.stop()
        offline.stop()


def test_fault_command_changes_a_running_simulator(simulator: Simulator) -> None:
    env = {**os.environ, "PROVGIT_ELEMENT_TOKEN": TOKEN}
    argv = [sys.executable, "-m", "provgit", "element", "fault", "--url", simulator.url]
    done = subprocess.run(
        [*argv, "--locked", "--latency-ms", "5", "--refuse", "cos/3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    faults = simulator.admin("/admin/faults", {})
    assert faults["locked"] and faults["latency_ms"] == 5
    assert faults["refuse"] == [{"collection": "cos", "key": "3"}]
    bad = subprocess.run(
        [*argv, "--refuse", "nokey"], env=env, capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 1 and "COLLECTION/KEY" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    sim = start_simulator(tmp_path)
    sim.proc.send_signal(signal.SIGTERM)
    assert sim.proc.wait(timeout=10) == 0
    assert "Traceback" not in (sim.proc.stderr.read() if sim.proc.stderr else "")


def test_serve_refuses_a_non_loopback_host_without_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROVGIT_ELEMENT_TOKEN"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "provgit",
            "element",
            "serve",
            "--name",
            "x",
            "--type",
            "ivr",
            "--db",
            str(tmp_path / "x.sqlite"),
            "--host",
            "0.0.0.0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "refusing to serve 0.0.0.0 without auth" in done.stderr
    assert "Traceback" not in done.stderr


def test_put_retried_after_timeout_that_landed_reports_success(simulator: Simulator) -> None:
    # The simulator applies the write, then holds the answer past the timeout:
    # the driver cannot know it landed. Its retry meets "already exists"; it
    # reads the record back, finds what it sent, and reports the success.
    simulator.admin("/admin/faults", {"latency_ms": 1000})

    async def main() -> None:
        driver = http(simulator.url, timeout=0.3, retries=2)
        try:
            write = asyncio.create_task(
                driver.write(WriteOp("put", "departments", "Sales", {"name": "Sales"}))
            )
            # The first attempt lands, then its answer is held past the timeout;
            # once the record is there, later attempts are answered at once.
            await _landed(simulator.db, "departments", "Sales")
            await asyncio.to_thread(simulator.admin, "/admin/faults", {"latency_ms": 0})
            result = await asyncio.wait_for(write, 10)
            page = await driver.list_records("departments")
        finally:
            await driver.close()
        assert result.ok
        assert [(r.key, r.revision) for r in page.records] == [("Sales", result.revision)]

    asyncio.run(main())


async def _landed(db: Path, collection: str, key: str, timeout: float = 10.0) -> None:
    """Wait (bounded) until the element's file holds the record, read-only."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not _has_record(db, collection, key):
        assert loop.time() < deadline, f"{collection}/{key} never landed on the element"
        await asyncio.sleep(0.01)


def _has_record(db: Path, collection: str, key: str) -> bool:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return False
    with contextlib.closing(conn):
        try:
            row = conn.execute(
                "SELECT 1 FROM records WHERE collection = ? AND key = ?", (collection, key)
            ).fetchone()
        except sqlite3.Error:
            return False
    return row is not None
