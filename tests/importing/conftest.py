"""A small realistic network on real simulator processes, for `provgit import`.

`network/` is the network as someone provisioned it by hand years ago; the
fixtures project it onto element stores (records as the elements hold them,
not marked as provgit's), optionally mess them up, and serve each store with
`provgit element serve --port 0` on 127.0.0.1. Every wait is bounded and
every process started here is stopped by the fixture that started it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from provgit.cli import main
from provgit.drivers.base import WriteOp
from provgit.plan.ordering import COLLECTION_ORDER
from provgit.projection import project
from provgit.records import MANAGED_BY
from provgit.secrets import Fingerprinter
from provgit.simulator.store import ElementStore
from provgit.source import read_directory
from provgit.validate import validate_source

HERE = Path(__file__).parent
NETWORK = HERE / "network"
START_TIMEOUT = 20.0
SERVE = [sys.executable, "-m", "provgit", "element", "serve"]

# name, type, ceid, cluster, admin group, partner
ELEMENTS: list[tuple[str, str, int, str | None, str | None, str | None]] = [
    ("micollab1", "micollab", 1, None, "collab-admins", None),
    ("mivb1", "mivb", 11, "ottawa", "ottawa-admins", "mivb2"),
    ("mivb2", "mivb", 12, "ottawa", "ottawa-admins", "mivb1"),
    ("mivb3", "mivb", 21, "toronto", "toronto-admins", None),
    ("ivr1", "ivr", 901, None, "ivr-admins", None),
]
# Records an element needs before others (COS before the phones naming it).
ORDER = COLLECTION_ORDER
SETTINGS = "version: 1\nnetwork: adopt-test\n"


def elements_yaml(urls: dict[str, str] | None = None) -> str:
    lines = ["elements:"]
    for name, etype, ceid, cluster, group, partner in ELEMENTS:
        lines += [f"  - name: {name}", f"    type: {etype}", f"    ceid: {ceid}"]
        if cluster:
            lines.append(f"    cluster: {cluster}")
        if group:
            lines.append(f"    admin_group: {group}")
        if partner:
            lines.append(f"    partner: {partner}")
        if urls is not None:
            lines += ["    driver: http", "    connection:", f"      url: {urls[name]}"]
    return "\n".join(lines) + "\n"


def write_wavs(root: Path) -> None:
    for name, tone in (("welcome", 1), ("welcome-fr", 2)):
        path = root / "ivr" / "prompts" / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(bytes([tone, 0]) * 800)


def truth_config(root: Path) -> Path:
    """The network as provisioned, as a provgit config."""
    shutil.copytree(NETWORK, root)
    (root / "provgit.yaml").write_text(SETTINGS)
    (root / "elements.yaml").write_text(elements_yaml())
    write_wavs(root)
    return root


def empty_config(root: Path, urls: dict[str, str]) -> Path:
    """A config repository before import: settings, elements, and the prompt audio."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "provgit.yaml").write_text(SETTINGS)
    (root / "network").mkdir(exist_ok=True)
    (root / "network" / "elements.yaml").write_text(elements_yaml(urls))
    write_wavs(root)
    return root


def populate(truth: Path, db_dir: Path) -> dict[str, Path]:
    """Project the truth config onto one store per element, as the elements hold it."""
    valid = validate_source(read_directory(truth), None)
    assert valid.ok, valid.diagnostics
    os.environ.setdefault("TEST_VM_PIN_WZHANG", "4321")
    os.environ.setdefault("TEST_HD_PIN", "9876")
    target = project(valid.state, Fingerprinter(b"test-key"), read_directory(truth).read_other)
    dbs: dict[str, Path] = {}
    for name, etype, *_ in ELEMENTS:
        db = db_dir / f"{name}.sqlite"
        store = ElementStore(db, name=name, element_type=etype)
        records = target.records.get(name, {})
        ops = []
        for collection in ORDER:
            for key, fields in records.get(collection, {}).items():
                # Provisioned by hand, long before provgit: not marked as ours.
                plain = {k: v for k, v in fields.items() if k != MANAGED_BY}
                ops.append(WriteOp("put", collection, key, plain))
        results = store.write_batch(ops, force=True)
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        store.close()
        dbs[name] = db
    return dbs


def edit(db: Path, op: str, collection: str, key: str, fields: Any = None) -> None:
    """An element admin's own change, straight into the store."""
    store = ElementStore(db)
    try:
        store.write(WriteOp(op, collection, key, fields), force=True)  # type: ignore[arg-type]
    finally:
        store.close()


def read(db: Path, collection: str, key: str) -> dict[str, Any]:
    store = ElementStore(db)
    try:
        return dict(store.get_record(collection, key).fields)
    finally:
        store.close()


@dataclass
class Simulators:
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    dbs: dict[str, Path] = field(default_factory=dict)

    def admin(self, element: str, path: str, body: Any) -> Any:
        request = urllib.request.Request(
            self.urls[element] + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def start(dbs: dict[str, Path], cwd: Path) -> Simulators:
    """One simulator per store, started together; bounded wait for each line."""
    env = {k: v for k, v in os.environ.items() if k != "PROVGIT_ELEMENT_TOKEN"}
    sims = Simulators(dbs=dict(dbs))
    lines: dict[str, str] = {}
    done: dict[str, threading.Event] = {}
    etype = {name: t for name, t, *_ in ELEMENTS}
    try:
        for name, db in dbs.items():
            argv = [*SERVE, "--name", name, "--type", etype[name], "--port", "0"]
            proc = subprocess.Popen(
                [*argv, "--db", str(db), "--admin"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=cwd,
            )
            sims.procs[name] = proc
            done[name] = threading.Event()

            def reader(n: str = name, p: subprocess.Popen[str] = proc) -> None:
                assert p.stdout is not None
                lines[n] = p.stdout.readline().strip()
                done[n].set()

            threading.Thread(target=reader, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        for name in dbs:
            if not done[name].wait(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"simulator {name} did not start in {START_TIMEOUT}s")
            line = lines[name]
            if not line.startswith("listening on http://"):
                raise RuntimeError(f"simulator {name} did not start: {line!r}")
            sims.urls[name] = line.removeprefix("listening on ")
    except BaseException:
        sims.stop()
        raise
    return sims


@pytest.fixture
def network(
    tmp_path: Path,
) -> Iterator[Callable[[Callable[[dict[str, Path]], None] | None], Simulators]]:
    """Call with an optional `mess(dbs)` to change the stores, then the simulators start."""
    started: list[Simulators] = []

    def make(mess: Callable[[dict[str, Path]], None] | None = None) -> Simulators:
        dbs = populate(truth_config(tmp_path / "truth"), tmp_path / "stores")
        if mess is not None:
            mess(dbs)
        sims = start(dbs, tmp_path)
        started.append(sims)
        return sims

    try:
        yield make
    finally:
        for sims in started:
            sims.stop()


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)
