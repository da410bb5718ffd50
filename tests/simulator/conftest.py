"""Fixtures for the element tests: real simulator processes on 127.0.0.1.

Every wait is bounded; every process started here is terminated (SIGTERM,
then SIGKILL) whatever the test did.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provgit.drivers.base import Driver, DriverConfig
from provgit.drivers.embedded import EmbeddedDriver
from provgit.drivers.http import HttpDriver
from provgit.simulator.store import ElementStore

TOKEN = "test-token-not-a-secret"
START_TIMEOUT = 20.0
RETENTION = 50
# `python -m provgit element serve`, as a user would start it.
SERVE = [sys.executable, "-m", "provgit", "element", "serve"]


@dataclass
class Simulator:
    proc: subprocess.Popen[str]
    url: str
    db: Path
    token: str | None
    stderr: list[str] = field(default_factory=list)

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body or {}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_simulator(
    tmp: Path,
    *args: str,
    element_type: str = "mivb",
    name: str = "cs1",
    token: str | None = TOKEN,
) -> Simulator:
    """Start `provgit element serve --port 0` and wait (bounded) for its line."""
    db = tmp / f"{name}.sqlite"
    env = {k: v for k, v in os.environ.items() if k != "PROVGIT_ELEMENT_TOKEN"}
    if token is not None:
        env["PROVGIT_ELEMENT_TOKEN"] = token
    argv = [*SERVE, "--name", name, "--type", element_type, "--port", "0", "--db", str(db)]
    proc = subprocess.Popen(
        [*argv, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp,
    )
    found: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found.append(line.strip())
        done.set()

    threading.Thread(target=read, daemon=True).start()
    if not done.wait(START_TIMEOUT) or not found[0].startswith("listening on http://"):
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise RuntimeError(f"simulator did not start: {found} {err[-2000:]}")
    return Simulator(proc, found[0].removeprefix("listening on "), db, token)


@pytest.fixture(scope="session")
def session_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """One admin-enabled mivb simulator per xdist worker, reset before each use."""
    sim = start_simulator(tmp_path_factory.mktemp("sim"), "--admin", "--retention", str(RETENTION))
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def simulator(session_simulator: Simulator) -> Iterator[Simulator]:
    session_simulator.admin("/admin/reset")
    yield session_simulator
    session_simulator.admin("/admin/reset")


class Element:
    """One clean element behind a driver, plus the element admin's own tool."""

    def __init__(self, kind: str, tmp: Path, sim: Simulator | None) -> None:
        self.kind = kind
        self.tmp = tmp
        self.sim = sim
        self.path = tmp / "element.sqlite"
        if kind == "embedded":
            # Create the file with the retention the simulator uses.
            ElementStore(self.path, name="cs1", element_type="mivb", retention=RETENTION).close()

    def driver(self, **settings: Any) -> Driver:
        if self.kind == "embedded":
            config = DriverConfig(
                "cs1", "mivb", {"path": str(self.path), "retention": RETENTION, **settings}
            )
            return EmbeddedDriver(config)
        assert self.sim is not None
        base = {"url": self.sim.url, "token": self.sim.token, "timeout": 5}
        return HttpDriver(DriverConfig("cs1", "mivb", {**base, **settings}))

    def run(self, body: Callable[[Driver], Awaitable[Any]], **settings: Any) -> Any:
        """Run `body(driver)` in a fresh loop, closing the driver after."""

        async def main() -> Any:
            driver = self.driver(**settings)
            try:
                return await asyncio.wait_for(body(driver), 30)
            finally:
                await driver.close()

        return asyncio.run(main())

    def set_state(self, state: str) -> None:
        if self.kind == "embedded":
            store = ElementStore(self.path)
            store.set_state(state)  # type: ignore[arg-type]
            store.close()
        else:
            assert self.sim is not None
            self.sim.admin(
                "/admin/faults", {"offline": state == "offline", "locked": state == "locked"}
            )

    def edit(self, op: str, collection: str, key: str, fields: Any = None) -> int:
        """An out-of-band edit, as the element's own admin tool would make it."""
        if self.kind == "embedded":
            from provgit.drivers.base import WriteOp

            store = ElementStore(self.path)
            try:
                result = store.write(WriteOp(op, collection, key, fields), force=True)  # type: ignore[arg-type]
            finally:
                store.close()
            assert result.revision is not None
            return result.revision
        assert self.sim is not None
        body = {"op": op, "collection": collection, "key": key, "fields": fields}
        return int(self.sim.admin("/admin/edit", body)["revision"])

    def refuse(self, collection: str, key: str) -> None:
        assert self.sim is not None, "refusal injection is a simulator fault"
        self.sim.admin("/admin/faults", {"refuse": [{"collection": collection, "key": key}]})


@pytest.fixture(params=["embedded", pytest.param("http", marks=pytest.mark.slow)])
def element(request: pytest.FixtureRequest, tmp_path: Path) -> Element:
    if request.param == "http":
        sim = request.getfixturevalue("simulator")
        return Element("http", tmp_path, sim)
    return Element("embedded", tmp_path, None)


def free_port_closed() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def admin_raw(url: str, path: str, token: str | None, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
