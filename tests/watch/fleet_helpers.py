"""A fleet of small networks for `provgit fleet watch` tests: one git
repository per network, a fleet file naming them, replica processes.

Each network's element is an embedded element (the simulator's ElementStore,
same semantics and same fencing as `provgit element serve`) in one directory
all replicas share: twenty simulator processes would cost ~30 s of CPU to
start on a loaded machine, and a network moving between replicas must find
its element where the last holder left it."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apply.helpers import SETTINGS
from provgit.simulator.store import ElementStore

from .helpers import Watch, commit_all, make_repo, start_fleet

PASSWORD_ENV = "FLEET_TEST_PG_PASSWORD"
APP_PREFIX = "provgit-fleet-replica"
# The fleet file's journal.pool_size: each replica's connections to the
# database, whatever the number of networks it serves (10 of 20 here).
POOL_SIZE = 8


@dataclass
class Net:
    name: str
    # The call server's store file (shared by the replicas); the MiCollab's is
    # beside it, named with an `m` before.
    element: Path
    bare: Path
    work: Path

    def commit(self, first_name: str) -> str:
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "provgit.yaml").write_text(SETTINGS.format(extra=""))
        mcl = self.element.with_name("m" + self.element.name)
        lines = [
            "elements:",
            f"  - {{name: {self.element.stem}, type: mivb, ceid: 10, cluster: east, "
            f"connection: {{path: {json.dumps(str(self.element))}, "
            "allow_outside_state_dir: true}}",
            f"  - {{name: {mcl.stem}, type: micollab, ceid: 1, "
            f"connection: {{path: {json.dumps(str(mcl))}, allow_outside_state_dir: true}}}}",
            "classes_of_service:",
            "  - {number: 1, comment: Default}",
            "templates:",
            "  - name: Basic",
            '    phones: [{label: Desk, device_type: "6920", primary: true}]',
            "    cos: {day: 1}",
            "roles:",
            "  - {name: Agent, template: Basic}",
            "users:",
        ]
        for n in range(2):
            lines += [
                f"  - {{login_id: user{n}, first_name: {first_name}, last_name: Person{n}, "
                f'role: Agent, host: {self.element.stem}, services: [{{dn: "{3000 + n}"}}]}}'
            ]
        (self.work / "net.yaml").write_text("\n".join(lines) + "\n")
        return commit_all(self.work, f"users named {first_name}")

    def changes(self) -> list[Any]:
        store = ElementStore(self.element)
        try:
            return store.changes(0).changes
        finally:
            store.close()

    def first_names(self) -> set[str]:
        latest: dict[tuple[str, str], Any] = {}
        for c in self.changes():
            latest[(c.collection, c.key)] = c.fields
        return {f["first_name"] for f in latest.values() if f and f.get("first_name")}

    def rewritten_unchanged(self) -> list[tuple[str, str, int]]:
        """Writes that put a record back with the fields it already had."""
        last: dict[tuple[str, str], Any] = {}
        found = []
        for c in self.changes():
            own = None if c.fields is None else {k: v for k, v in c.fields.items() if k[0] != "_"}
            if (
                (c.collection, c.key) in last
                and own is not None
                and last[(c.collection, c.key)] == own
            ):
                found.append((c.collection, c.key, c.revision))
            last[(c.collection, c.key)] = own
        return found


@dataclass
class FleetRig:
    tmp: Path
    file: Path
    nets: list[Net]
    password: str
    lease_seconds: float
    url: str  # the journal's database, without the password
    replicas: list[Watch] = field(default_factory=list)
    fetch_seconds: float = 0.3
    # Environment every replica gets on top (a remote fleet's git URL rewrites).
    env: dict[str, str] = field(default_factory=dict)
    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, slot: int | None = None) -> Watch:
        """A replica; `slot` reuses a stopped replica's state directory (a restart)."""
        if slot is None:
            with self._lock:
                self.count += 1
                slot = self.count
        w = start_fleet(
            [
                str(self.file),
                "--state-dir",
                str(self.tmp / f"replica{slot}"),
                "--fetch-seconds",
                str(self.fetch_seconds),
                "--resync-seconds",
                "0",
                "--allow-mass-update",
            ],
            # The networks' element files are in a directory the replicas share;
            # each replica's sessions are named apart in pg_stat_activity.
            env={
                PASSWORD_ENV: self.password,
                "PROVGIT_ELEMENT_FILES_DIR": str(self.tmp),
                "PGAPPNAME": f"{APP_PREFIX}{slot}",
                **self.env,
            },
        )
        self.replicas.append(w)
        return w

    def start_together(self, count: int) -> list[Watch]:
        """`count` replicas started at once (as a deployment's would be)."""
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda _: self.start(), range(count)))

    def names(self) -> set[str]:
        return {n.name for n in self.nets}


# The host a remote fleet's repositories claim to be on: git rewrites its URLs
# to the local bare repositories (url.<base>.insteadOf), so no traffic leaves.
REMOTE = "https://git.example.test/fleet/"


def make_fleet(
    tmp: Path,
    count: int,
    journal_url: str,
    password: str,
    lease: float,
    webhook_secret_env: str | None = None,
) -> FleetRig:
    """`count` networks of one element each (users named Ann), and the fleet file.
    With `webhook_secret_env` the repositories are remote URLs (REMOTE + name)
    and the fleet's webhook secret is that variable."""
    shared = tmp / "elements"
    shared.mkdir()

    def make(i: int) -> Net:
        root = tmp / f"net{i:02d}"
        root.mkdir()
        bare, work = make_repo(root)
        net = Net(f"net-{i:02d}", shared / f"e{i:02d}.sqlite", bare, work)
        net.commit("Ann")
        return net

    # Seven git processes per network, one network after another, took ~18 s
    # of a loaded machine's wall time: made side by side.
    with ThreadPoolExecutor(4) as pool:
        nets = list(pool.map(make, range(count)))
    lines = [
        "version: 1",
        "journal:",
        f"  url: {journal_url}",
        f"  password: {{env: {PASSWORD_ENV}}}",
        f"  pool_size: {POOL_SIZE}",
        f"leases: {{seconds: {lease}}}",
        "networks:",
    ]
    env: dict[str, str] = {}
    if webhook_secret_env is not None:
        lines.insert(1, f"webhook_secret: {{env: {webhook_secret_env}}}")
        env["GIT_CONFIG_COUNT"] = str(len(nets))
    for i, n in enumerate(nets):
        repo = str(n.bare)
        if webhook_secret_env is not None:
            repo = f"{REMOTE}{n.name}.git"
            env[f"GIT_CONFIG_KEY_{i}"] = f"url.{n.bare}.insteadOf"
            env[f"GIT_CONFIG_VALUE_{i}"] = repo
        lines.append(f"  - {{name: {n.name}, repo: {json.dumps(repo)}, ref: main}}")
    file = tmp / "fleet.yaml"
    file.write_text("\n".join(lines) + "\n")
    return FleetRig(tmp, file, nets, password, lease, journal_url, env=env)


def fleet_status(w: Watch, fresh: bool = True) -> dict[str, Any]:
    """A replica's /status.json (a fleet's document can take seconds on a
    loaded machine). `fresh`: asked again until the answer is a document built
    after the request (a build past the replica's wait is answered with the
    last one, `fresh: false`), as the tests compare it with what just happened."""
    end = time.monotonic() + 120
    while True:
        with urllib.request.urlopen(w.url + "/status.json", timeout=120) as r:
            doc: dict[str, Any] = json.loads(r.read())
        if not fresh or doc.get("fresh", True) or time.monotonic() > end:
            return doc


def settled(docs: list[dict[str, Any]], names: set[str]) -> dict[str, str] | None:
    """network -> replica, once every network is held, runs on its holder and
    is Sync Completed there with each of its elements held by that replica
    (as each replica's own /status.json says), and every other replica names
    that holder; else None."""
    held: dict[str, str] = {}
    named: list[tuple[str, str | None]] = []  # (network, holder) as the others name it
    for doc in docs:
        me = doc["replica"]["id"]
        for n in doc["networks"]:
            if not n["here"]:
                named.append((n["name"], n["holder"]))
                continue
            if n["holder"] != me or n["status"] != "Sync Completed" or not n["elements"]:
                return None
            if any(e["holder"] != me or e["status"] != "Sync Completed" for e in n["elements"]):
                return None
            if n["name"] in held:
                return None  # run by two replicas at once
            held[n["name"]] = me
    if set(held) != names:
        return None
    # Every replica names that holder too: a replica learns of a take-over at
    # its next lease round, and until then answers for the network with no
    # holder (the fresh-clone CI of 2026-12-07 07:30: a delivery's answer
    # read `holder: None` from the replica the network had just left).
    return held if all(held.get(name) == holder for name, holder in named) else None


def logged_in_sync(replicas: list[Watch], names: set[str]) -> list[int] | None:
    """What the replicas' logs say, read in this process at no cost to the
    replicas: how many networks each live replica runs, once every network
    runs on exactly one and its last run since it started there finished
    Sync Completed; else None. A cheap gate before asking each replica's
    /status.json (settled), which says it for certain but costs a replica
    seconds of CPU per request on a loaded machine (every network's live
    document): polled alone, it slowed the very moves it waited for."""
    runs: dict[str, str | None] = {}
    counts = []
    for w in replicas:
        if w.proc.poll() is not None:
            continue
        mine: dict[str, str | None] = {}
        for line in list(w.logs):
            event, network = line.get("event"), line.get("network")
            if event == "network_started":
                mine[network] = None
            elif event in ("network_stopped", "network_failed"):
                mine.pop(network, None)
            elif event == "run_finished" and network in mine:
                mine[network] = line.get("outcome")
        if set(mine) & set(runs):
            return None
        runs.update(mine)
        counts.append(len(mine))
    if set(runs) != names or any(o != "Sync Completed" for o in runs.values()):
        return None
    return sorted(counts)


def spread(held: dict[str, str]) -> list[int]:
    return sorted(Counter(held.values()).values())


def all_named(net: Net, name: str) -> bool:
    return net.first_names() == {name}


class SessionCounter:
    """The most sessions each replica held at once (pg_stat_activity by
    application_name), sampled on a thread while a test runs."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.most: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> SessionCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _sample(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, application_name="counter") as c:
            while not self._stop.wait(0.1):
                rows = c.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity "
                    "WHERE application_name LIKE %s GROUP BY 1",
                    (APP_PREFIX + "%",),
                ).fetchall()
                for app, n in rows:
                    self.most[app] = max(self.most[app], int(n))
