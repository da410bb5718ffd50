"""A/B of a directory full read between two provgit source trees, same slapd.

    git archive <base> src | tar -x -C /tmp/base
    .venv/bin/python benchmarks/bench_ldap_ab.py /tmp/base/src src [--entries 100000] [--rounds 4]

Starts one throwaway slapd (tests/directory/slapd.py) with N user entries
(bench_ldap.py's), then reads them all through `observe` and the `ldap`
driver, alternately with each tree (A B, B A, ...), each read in a process of
its own: wall and CPU seconds of the read, the process's peak RSS, the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BASE_OU = "ou=people,dc=example,dc=test"


def read_once(src: str, url: str, n: int) -> dict[str, float]:
    """One full read with the provgit of `src` (run in a process of its own)."""
    sys.path.insert(0, src)
    from provgit.drivers.base import DriverConfig
    from provgit.drivers.ldap import LdapDriver
    from provgit.observe import observe

    directory = {"base_dn": BASE_OU, "bind_dn": "cn=admin,dc=example,dc=test"}
    settings: dict[str, Any] = {
        "url": url,
        "token": "test-root-password-not-a-secret",
        "directory": {**directory, "preset": "active_directory"},
        "timeout": 120,
    }

    async def body() -> tuple[float, float]:
        d = LdapDriver(DriverConfig("dir1", "directory", settings))
        try:
            t, c = time.perf_counter(), time.process_time()
            o = (await observe({"dir1": d}))["dir1"]
            took, cpu = time.perf_counter() - t, time.process_time() - c
        finally:
            await d.close()
        assert o.ok and len(o.records["users"]) == n, o.error
        return took, cpu

    wall, cpu = asyncio.run(body())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall": wall, "cpu": cpu, "rss_mb": rss}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one read, URL
    args = ap.parse_args()
    if args.one:
        print(json.dumps(read_once(args.a, args.one, args.entries)))
        return
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    from bench_ldap import seed
    from tests.directory import slapd

    trees = {"A": str(Path(args.a).resolve()), "B": str(Path(args.b).resolve())}
    with tempfile.TemporaryDirectory() as tmp:
        server = slapd.start(Path(tmp) / "slapd", seed(args.entries))
        try:

            def one(tree: str) -> dict[str, float]:
                argv = [sys.executable, __file__, trees[tree], "-", "--one", server.url]
                argv += ["--entries", str(args.entries)]
                out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
                return {**json.loads(out.splitlines()[-1]), "load": os.getloadavg()[0]}

            one("A")  # warms slapd's caches
            got: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
            for r in range(args.rounds):
                for tree in ("A", "B") if r % 2 == 0 else ("B", "A"):
                    got[tree].append(one(tree))
                    print(tree, got[tree][-1], flush=True)
            for tree, runs in got.items():
                med = {f: statistics.median(x[f] for x in runs) for f in ("wall", "cpu", "rss_mb")}
                loads = [x["load"] for x in runs]
                print(
                    f"{tree} {trees[tree]}: median wall {med['wall']:.2f} s, "
                    f"CPU {med['cpu']:.2f} s, peak RSS {med['rss_mb']:.0f} MB "
                    f"(load {min(loads):.1f}-{max(loads):.1f})"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
