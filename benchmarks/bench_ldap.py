"""Time a full read of a directory element: N entries from a throwaway slapd.

    .venv/bin/python benchmarks/bench_ldap.py [--entries 100000] [--runs 3] [--profile]

Starts Debian's slapd on a loopback port (the test suite's fixture,
tests/directory/slapd.py), loads N user entries with `slapadd` (not timed), then
times `observe` of the element through the `ldap` driver: paged searches of
1,000 entries, every entry decoded into a provgit record. Also times
`ldapsearch` of the same entries to a file (the C client, the floor), the
CPU seconds provgit and slapd spent (steadier than wall time on a loaded
machine) and, with --profile, where the main thread's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "src"))

from tests.directory import slapd  # noqa: E402

from provgit.drivers.base import DriverConfig  # noqa: E402
from provgit.drivers.ldap import MARKER, LdapDriver  # noqa: E402
from provgit.observe import observe  # noqa: E402


def seed(n: int) -> str:
    return "\n".join(
        f"dn: cn=u{i:06d},{slapd.BASE_OU}\nobjectClass: inetOrgPerson\nobjectClass: adUser\n"
        f"cn: u{i:06d}\nsn: User{i}\ngivenName: First{i}\nsAMAccountName: u{i:06d}\n"
        f"mail: u{i:06d}@example.test\ndepartment: Sales\nphysicalDeliveryOfficeName: Ottawa\n"
        f"telephoneNumber: {200000 + i}\nemployeeType: Staff\nipPhone: mivb1\n"
        f"description: {MARKER}\n"
        for i in range(n)
    )


def config(server: slapd.Slapd) -> DriverConfig:
    directory = {"base_dn": slapd.BASE_OU, "bind_dn": slapd.ROOT_DN, "preset": "active_directory"}
    settings = {"url": server.url, "token": slapd.ROOT_PW, "directory": directory, "timeout": 120}
    return DriverConfig("dir1", "directory", settings)


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_once(server: slapd.Slapd, n: int) -> tuple[float, float, float]:
    """(wall seconds, provgit's CPU seconds, slapd's CPU seconds) of one full read."""

    async def body() -> tuple[float, float, float]:
        driver = LdapDriver(config(server))
        try:
            t, cpu, server_cpu = time.perf_counter(), time.process_time(), cpu_of(server.proc.pid)
            observed = (await observe({"dir1": driver}))["dir1"]
            took = time.perf_counter() - t
            cpu = time.process_time() - cpu
            server_cpu = cpu_of(server.proc.pid) - server_cpu
        finally:
            await driver.close()
        assert observed.ok, observed.error
        assert len(observed.records["users"]) == n, len(observed.records["users"])
        return took, cpu, server_cpu

    return asyncio.run(body())


def ldapsearch_once(server: slapd.Slapd, out: Path) -> float:
    t = time.perf_counter()
    with out.open("wb") as f:
        subprocess.run(
            [
                "ldapsearch", "-x", "-LLL", "-H", server.url, "-D", slapd.ROOT_DN,
                "-w", slapd.ROOT_PW, "-b", slapd.BASE_OU, "-s", "one", "-E", "pr=1000/noprompt",
                "(sAMAccountName=*)",
            ],
            stdout=f,
            check=True,
        )  # fmt: skip
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    why = slapd.missing()
    if why:
        sys.exit(why)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        server = slapd.start(Path(tmp) / "slapd", seed(args.entries))
        print(f"slapadd of {args.entries:,} entries: {time.perf_counter() - t:.1f} s")
        try:
            read_once(server, args.entries)  # warm slapd's caches
            runs = [read_once(server, args.entries) for _ in range(args.runs)]
            floor = [ldapsearch_once(server, Path(tmp) / "out.ldif") for _ in range(args.runs)]
            times = [r[0] for r in runs]
            print(
                f"driver full read, {args.entries:,} entries: median "
                f"{statistics.median(times):.2f} s (runs {', '.join(f'{x:.2f}' for x in times)})"
            )
            # CPU seconds hardly move with the machine's load: with the two
            # processes alone on the machine, the read takes about their sum
            # (paged results alternate between them) or less.
            print(
                f"  CPU: provgit {statistics.median(r[1] for r in runs):.2f} s, "
                f"slapd {statistics.median(r[2] for r in runs):.2f} s (medians)"
            )
            print(
                f"ldapsearch (C) to a file:          median {statistics.median(floor):.2f} s "
                f"(runs {', '.join(f'{x:.2f}' for x in floor)})"
            )
            print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            if args.profile:
                prof = cProfile.Profile()
                prof.enable()
                read_once(server, args.entries)
                prof.disable()  # the main thread only: the driver reads in a worker thread
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
