"""Watch-mode latency into a directory: a one-user change committed to the
config, to the entry changed in a real slapd ("Sync Completed").

    .venv/bin/python benchmarks/bench_ldap_watch.py [--users 10000] [--runs 5]

Setup: a throwaway slapd (the test suite's fixture, tests/directory/slapd.py)
and a network of two elements (users in people files of 500): `dir1`, a
directory element (driver ldap, the Active Directory mapping) on that slapd,
and `cs1`, the call server the users are hosted on (embedded). N users, each
on both. Every record is written to the elements before the watcher starts
(through the drivers, as an apply would), so the watcher starts on a network
in sync.

Trigger: `provgit watch --repo DIR --ref main --fetch-seconds 0` on the config
as a git work tree; a one-user change (last name, so it reaches the
directory entry's `sn`) is committed and `POST /reconcile` (the webhook) is
sent, as a git server's push hook would. Latency = from before the commit to
the watcher's `sync_result` log line saying "Sync Completed" (the line comes
after slapd acknowledged the modify); each run then checks the entry with
`ldapsearch`. Median of --runs; the load average is written beside it into
benchmarks/README.md (the #20 section).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "src"))

import ldap3  # noqa: E402
from bench_watch import Watcher, git, populate  # noqa: E402
from tests.directory import slapd  # noqa: E402

SETTINGS = "version: 1\nnetwork: ids-bench\nreports: {git_notes: false}\n"
CENTRAL = """\
templates:
  - name: Desk
    phones:
      - {label: Desk, device_type: "6920", primary: true}
roles:
  - {name: Staff, template: Desk}
"""


def elements(server: slapd.Slapd, password: Path) -> str:
    return (
        "elements:\n"
        "  - name: dir1\n"
        "    type: directory\n"
        "    ceid: 2\n"
        "    driver: ldap\n"
        "    connection:\n"
        f"      url: {server.url}\n"
        f"      token: {{file: {password}}}\n"
        "      timeout: 60\n"
        "    directory:\n"
        f"      base_dn: {slapd.BASE_OU}\n"
        f"      bind_dn: {slapd.ROOT_DN}\n"
        f"      object_classes: [{', '.join(slapd.AD_OBJECT_CLASSES)}]\n"
        "  - name: cs1\n"
        "    type: mivb\n"
        "    ceid: 11\n"
        "    cluster: ottawa\n"
    )


PER_FILE = 500  # users per people file, as a team's file would hold


def people(first: int, n: int) -> str:
    lines = ["users:"]
    for i in range(first, first + n):
        lines += [
            f"  - login_id: u{i:06d}",
            f"    first_name: First{i}",
            f"    last_name: User{i}",
            f"    email: u{i:06d}@example.test",
            "    role: Staff",
            "    host: cs1",
            "    services:",
            f'      - dn: "{200000 + i}"',
            "        label: Desk",
        ]
    return "\n".join(lines) + "\n"


def prepare(root: Path, server: slapd.Slapd, users: int, tmp: Path) -> None:
    (root / "network").mkdir(parents=True)
    (root / "people").mkdir()
    (root / "provgit.yaml").write_text(SETTINGS)
    (root / "roles-and-templates.yaml").write_text(CENTRAL)
    password = tmp / "bind-password"
    password.write_text(slapd.ROOT_PW + "\n")
    (root / "network" / "elements.yaml").write_text(elements(server, password))
    for first in range(0, users, PER_FILE):
        part = root / "people" / f"staff{first // PER_FILE:03d}.yaml"
        part.write_text(people(first, min(PER_FILE, users - first)))


def entry(server: slapd.Slapd, login: str) -> str:
    return subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-H", server.url, "-b", slapd.BASE_OU, f"(cn={login})", "sn"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Arrival:
    """When an entry's `sn` becomes a value: a base search every 5 ms on its
    own connection (one entry: far below a millisecond of slapd's time)."""

    def __init__(self, server: slapd.Slapd, login: str, value: str) -> None:
        self.at: float | None = None
        self.conn = ldap3.Connection(
            ldap3.Server(server.url, get_info=ldap3.NONE),
            slapd.ROOT_DN,
            slapd.ROOT_PW,
            auto_bind=True,
        )
        self.dn = f"cn={login},{slapd.BASE_OU}"
        self.value = value
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.stop.is_set():
            self.conn.search(self.dn, "(objectClass=*)", ldap3.BASE, attributes=["sn"])
            now = time.perf_counter()
            got = self.conn.response[0]["attributes"].get("sn") if self.conn.response else None
            if got and self.value in (got if isinstance(got, list) else [got]):
                self.at = now
                return
            self.stop.wait(0.005)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.conn.unbind()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ldap-watch-"))
    server = slapd.start(tmp / "slapd")
    w: Watcher | None = None
    try:
        root = tmp / "config"
        prepare(root, server, a.users, tmp)
        state = tmp / "state"
        t = time.perf_counter()
        records = populate(root, state)
        print(f"filled dir1 and cs1 with {records:,} records in {time.perf_counter() - t:.1f} s")
        git(root, "init", "-q", "-b", "main")
        (root / ".gitignore").write_text(".provgit/\n")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "network")
        w = Watcher(
            [
                "--repo",
                str(root),
                "--ref",
                "main",
                "--fetch-seconds",
                "0",
                "--resync-seconds",
                "0",
                "--state-dir",
                str(state),
            ]
        )
        _, first = w.wait("run_finished", 0)
        print(f"watch --repo started; first run {first['seconds']} s ({first.get('stages')})")
        latencies: list[float] = []
        completed: list[float] = []
        stages: list[dict[str, float]] = []
        load: list[float] = []
        cpu_watch: list[float] = []
        cpu_slapd: list[float] = []
        for n in range(a.runs):
            number = (n * 7919) % a.users
            login = f"u{number:06d}"
            staff = root / "people" / f"staff{number // PER_FILE:03d}.yaml"
            text = staff.read_text()
            staff.write_text(
                re.sub(
                    rf"(login_id: {login}\n(?:    .*\n)*?    last_name: )\S+",
                    rf"\g<1>Bench{n}",
                    text,
                    count=1,
                )
            )
            mark = w.mark()
            load.append(os.getloadavg()[0])
            arrival = Arrival(server, login, f"Bench{n}")
            c0 = (cpu_seconds(w.proc.pid), cpu_seconds(server.proc.pid))
            t0 = time.perf_counter()
            git(root, "commit", "-q", "-m", f"user {login}", "--", str(staff.relative_to(root)))
            w.post("/reconcile")
            at, _ = w.wait("sync_result", mark, status="Sync Completed")
            _, finished = w.wait("run_finished", mark)
            cpu_watch.append(cpu_seconds(w.proc.pid) - c0[0])
            cpu_slapd.append(cpu_seconds(server.proc.pid) - c0[1])
            arrival.close()
            assert arrival.at is not None and f"sn: Bench{n}" in entry(server, login)
            latencies.append(arrival.at - t0)
            completed.append(at - t0)
            stages.append(finished.get("stages", {}))
            print(
                f"  run {n + 1}: in the directory {arrival.at - t0:.3f} s, Sync Completed "
                f"{at - t0:.3f} s  CPU watch {cpu_watch[-1]:.2f} s slapd {cpu_slapd[-1]:.2f} s  "
                f"stages {finished.get('stages')}",
                flush=True,
            )
        med_stages = {
            k: round(statistics.median(s.get(k, 0.0) for s in stages), 3) for k in stages[0]
        }
        result = {
            "users": a.users,
            "runs": [round(x, 3) for x in latencies],
            "median": round(statistics.median(latencies), 3),
            "completed": [round(x, 3) for x in completed],
            "completed_median": round(statistics.median(completed), 3),
            "stages": med_stages,
            "load": [round(x, 2) for x in load],
            "cpu_watch": round(statistics.median(cpu_watch), 3),
            "cpu_slapd": round(statistics.median(cpu_slapd), 3),
        }
        print(result)
        if not a.no_readme:
            write_readme(result)
        return 0
    finally:
        if w is not None:
            w.stop()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def write_readme(r: dict[str, Any]) -> None:
    path = HERE / "README.md"
    ok = "yes" if r["median"] <= 0.5 else "NO"
    stages = ", ".join(f"{k} {v}" for k, v in r["stages"].items())
    block = "\n".join(
        [
            "<!-- bench_ldap_watch:start -->",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{os.cpu_count()} CPU(s), load average (1 min) before each run: "
            f"{', '.join(map(str, r['load']))}. `benchmarks/bench_ldap_watch.py --users "
            f"{r['users']}`: `watch --repo --fetch-seconds 0`, triggered by `POST /reconcile` "
            "after each commit (the webhook; the watcher does not poll here).",
            "",
            "| change | median s | runs (s) | floor | within |",
            "| --- | ---: | --- | --- | --- |",
            f"| one user's last name: commit -> entry changed in slapd, "
            f"{r['users']:,} users on dir1 + cs1 | {r['median']} | "
            f"{', '.join(map(str, r['runs']))} | <= 0.5 s | {ok} |",
            f"| same run: commit -> the watcher's sync_result: Sync Completed | "
            f"{r['completed_median']} | {', '.join(map(str, r['completed']))} | | |",
            "",
            f"Median CPU per run (user + system, from before the commit to the run's end): "
            f"watcher {r['cpu_watch']} s, slapd {r['cpu_slapd']} s.",
            "",
            f"Median stages of the watcher's run (s): {stages}.",
            "<!-- bench_ldap_watch:end -->",
        ]
    )
    text = path.read_text()
    if "<!-- bench_ldap_watch:start -->" in text:
        text = re.sub(
            r"<!-- bench_ldap_watch:start -->.*<!-- bench_ldap_watch:end -->",
            lambda _: block,
            text,
            flags=re.S,
        )
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
