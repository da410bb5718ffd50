"""Helpers for the apply tests: real simulator processes, small configs, the CLI.

Every wait is bounded and every process started here is stopped (SIGTERM,
then SIGKILL) by the fixture that started it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from provgit.api.network import Network, connect
from provgit.apply import ApplyOptions, ApplyResult, apply_plan
from provgit.cli import main
from provgit.journal import Journal
from provgit.plan import Plan
from provgit.simulator.store import ElementStore
from provgit.validate import Validated
from support import kill_after
from support.kill_after import KILL_HOOK_ENV

# A bounded wait for a process's "listening" line: on a machine shared by
# eight sessions (load 20+ on 2 cores) a Python start took more than 20 s.
START_TIMEOUT = 60.0
SERVE = [sys.executable, "-m", "provgit", "element", "serve"]
PROVGIT = [sys.executable, "-m", "provgit"]
# Fast retries so "retried, then pending" takes a fraction of a second.
SETTINGS = """\
version: 1
network: t
apply:
  retry_attempts: 2
  retry_base_seconds: 0.02
  retry_max_seconds: 0.1
{extra}"""


@dataclass
class Sim:
    name: str
    type: str
    proc: subprocess.Popen[str]
    url: str
    db: Path
    # The bearer token a simulator started with --token-env takes (admin too).
    token: str | None = None

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

    def faults(self, **body: Any) -> Any:
        return self.admin("/admin/faults", body)

    def records(self) -> dict[str, dict[str, dict[str, Any]]]:
        return read_store(self.db)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_sims(tmp: Path, specs: Sequence[tuple[str, str]], *args: str) -> list[Sim]:
    """Start one simulator per (name, type) at once, each on a free port."""
    env = {k: v for k, v in os.environ.items() if k != "PROVGIT_ELEMENT_TOKEN"}
    procs = []
    for name, kind in specs:
        db = tmp / "sims" / f"{name}.sqlite"
        db.parent.mkdir(parents=True, exist_ok=True)
        argv = [*SERVE, "--name", name, "--type", kind, "--port", "0", "--db", str(db), "--admin"]
        proc = subprocess.Popen(
            [*argv, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        procs.append((name, kind, proc, db))
    sims: list[Sim] = []
    try:
        for name, kind, proc, db in procs:
            line = _first_line(proc)
            if not line.startswith("listening on http://"):
                raise RuntimeError(f"simulator {name} did not start: {line!r}")
            sims.append(Sim(name, kind, proc, line.removeprefix("listening on "), db))
    except BaseException:
        for _, _, proc, _ in procs:
            proc.kill()
            proc.wait(timeout=5)
        raise
    return sims


def _first_line(proc: subprocess.Popen[str]) -> str:
    found: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        found.append(proc.stdout.readline().strip())
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(START_TIMEOUT)
    return found[0] if found else ""


def read_store(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Every record of an element file, read directly (WAL allows a reader beside the server)."""
    store = ElementStore(path)
    try:
        out: dict[str, dict[str, dict[str, Any]]] = {}
        rows = store._db.execute("SELECT collection, key, fields FROM records").fetchall()
        for collection, key, fields in rows:
            out.setdefault(collection, {})[key] = json.loads(fields)
        return out
    finally:
        store.close()


def write_config(
    root: Path,
    sims: Sequence[Sim],
    users: int = 3,
    refuse_cos: bool = False,
    extra_settings: str = "",
    first_name: str = "Ann",
    embedded_mcl: bool = True,
) -> Path:
    """A small network: an embedded MiCollab (mcl) and the simulated call servers."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "provgit.yaml").write_text(SETTINGS.format(extra=extra_settings))
    lines = ["elements:"]
    if embedded_mcl:
        lines.append("  - {name: mcl, type: micollab, ceid: 1}")
    for i, sim in enumerate(sims):
        cluster = ", cluster: east" if sim.type == "mivb" else ""
        lines.append(
            f"  - {{name: {sim.name}, type: {sim.type}, ceid: {10 + i}{cluster}, driver: http, "
            f"connection: {{url: '{sim.url}', timeout: 5}}}}"
        )
    hosts = [s.name for s in sims if s.type == "mivb"]
    lines += [
        "classes_of_service:",
        "  - {number: 1, comment: Default}",
        "  - {number: 7, comment: Sales}",
        "templates:",
        "  - name: Basic",
        '    phones: [{label: Desk, device_type: "6920", primary: true}]',
        "    cos: {day: 1}",
        "roles:",
        "  - {name: Agent, template: Basic}",
        "users:",
    ]
    for n in range(users):
        cos = ", cos: {day: 7}" if n == 0 else ""
        lines += [
            f"  - login_id: user{n}",
            f"    first_name: {first_name}",
            f"    last_name: Person{n}",
            "    role: Agent",
            f"    host: {hosts[n % len(hosts)]}",
            "    services:",
            f'      - {{dn: "{3000 + n}"{cos}}}',
        ]
    if any(s.type == "ivr" for s in sims):
        lines += [
            "ivr_media_servers:",
            "  - {name: ms1, host: 10.0.0.5}",
        ]
    (root / "net.yaml").write_text("\n".join(lines) + "\n")
    return root


def move_user0(config: Path, to: str = "cs2") -> None:
    """user0 (hosted on cs1 by write_config) now hosted on `to`."""
    net = config / "net.yaml"
    head, mark, rest = net.read_text().partition("  - login_id: user0\n")
    net.write_text(head + mark + rest.replace("    host: cs1\n", f"    host: {to}\n", 1))


def users_on(sim: Sim) -> set[str]:
    """The users `sim` hosts (not its directory entries for others)."""
    return set(sim.records().get("users", {}))


@dataclass
class Ran:
    code: int
    out: str
    err: str


def cli(*args: str) -> Ran:
    """`provgit ARGS` in-process (fast), with no terminal attached."""
    runner = CliRunner()
    r = runner.invoke(main, list(args), catch_exceptions=False)
    return Ran(r.exit_code, r.stdout, r.stderr)


def cli_process(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Ran:
    """`provgit ARGS` as a process of its own. Given `KILL_HOOK_ENV` in `env`
    (older tests), it runs through the kill launcher (tests/support/kill_after.py)."""
    env = {**os.environ, **(env or {})}
    point = env.pop(KILL_HOOK_ENV, None)
    argv = kill_after.command(point, *args) if point else [*PROVGIT, *args]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    return Ran(p.returncode, p.stdout, p.stderr)


def cli_killed_at(point: str, *args: str, timeout: float = 60) -> Ran:
    """`provgit ARGS` as a process SIGKILLed at its write `point` ("N" right
    after the Nth write call returned, "N:before" right before it is sent);
    it finishes normally if it makes fewer calls."""
    env = {k: v for k, v in os.environ.items() if k != KILL_HOOK_ENV}
    p = subprocess.run(
        kill_after.command(point, *args), capture_output=True, text=True, timeout=timeout, env=env
    )
    return Ran(p.returncode, p.stdout, p.stderr)


def journal(state: Path) -> Journal:
    return Journal.open(state)


def wait_for(predicate: Any, timeout: float = 60.0) -> bool:
    """Poll `predicate` until true (True) or `timeout` passed (False). The
    default is a bound for a loaded machine (10 s was not, at load 30+)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


async def apply_in_process(
    valid: Validated,
    plan: Plan,
    config: Path,
    options: ApplyOptions,
    inspect: Callable[[Network], None] = lambda _: None,
) -> ApplyResult:
    """Apply `plan` as `provgit apply` would, in this process; `inspect` sees the
    network (its drivers) before it is closed."""
    state = config / ".provgit"
    network = connect(valid.state, state, config)
    j = Journal.open(state)
    try:
        result = await apply_plan(plan, network.drivers, j, valid.state.settings, state, options)
        inspect(network)
        return result
    finally:
        await network.close()
        j.close()


@contextlib.contextmanager
def hostile(script: Path, sim: Sim, *args: str) -> Iterator[Sim]:
    """`sim` as seen through a hostile element of tests/support (SCRIPT SIM_URL ARGS)."""
    proc = subprocess.Popen(
        [sys.executable, str(script), sim.url, *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded: the process answers or dies
        assert line.startswith("listening on "), line
        yield Sim(sim.name, sim.type, sim.proc, line.split()[-1], sim.db)
    finally:
        proc.terminate()
        # A bound: the proxy drains its connections on SIGTERM (a flood may be
        # mid-write), which took seconds at load 30+.
        proc.wait(timeout=60)


BLIND = Path(__file__).parent.parent / "support" / "blind_element.py"
# `blind(sim, MODE)`: `sim` as seen through tests/support/blind_element.py.
Blind = Callable[[Sim, str], Sim]


def reported(out: str) -> dict[str, dict[str, Any]]:
    """A `--format json` run's element entries, by element."""
    return {e["element"]: e for e in json.loads(out)["elements"]}


def status_by_element(config: Path) -> dict[str, str]:
    """What `provgit status` says of each element now."""
    status = json.loads(cli("status", str(config), "--format", "json").out)
    return {n: e["status"] for n, e in status["elements"].items()}
