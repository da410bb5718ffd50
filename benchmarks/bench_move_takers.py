"""CPU cost of finding the writes that wait for a moving user's delete
(apply/moves.py `_taking`): one user moving away beside N modifies of other
users on the same element (a template change reaching N users), and N adds.

    PYTHONPATH=<tree>/src .venv/bin/python benchmarks/bench_move_takers.py [--n 20000] [--runs 5]

CPU seconds of this process (time.process_time), median of --runs, load beside.
Run it with each tree's src first on PYTHONPATH for an A/B.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import _common  # noqa: F401  (this tree's src, unless PYTHONPATH names another)

from provgit.apply import moves
from provgit.plan.model import Operation


def _user(i: int, dn: str) -> dict[str, Any]:
    service = {"dn": dn, "label": "Desk", "device_type": "6920", "cos_day": "1"}
    return {"login_id": f"u{i}", "email": f"u{i}@x.example", "services": [service]}


def _ops(n: int, action: str) -> list[Operation]:
    gone = {k: {"before": v} for k, v in _user(-1, "9000").items()}
    ops = [Operation("delete", "users", "mover", "users", "mover", gone, None)]
    for i in range(n):
        fields = _user(i, str(100_000 + i))
        changes = {"first_name": {"before": "Z", "after": "A"}} if action == "modify" else {}
        ops.append(Operation(action, "users", f"u{i}", "users", f"u{i}", changes, fields))
    return ops


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    for action, label in (("modify", "modifies"), ("add", "adds")):
        ops = _ops(args.n, action)
        times = []
        for _ in range(args.runs):
            t = time.process_time()
            moves._taking(ops, {("users", "mover")})
            times.append(time.process_time() - t)
        ms = statistics.median(times) * 1000
        print(f"{args.n} {label} beside a move: {ms:.1f} ms CPU (median of {args.runs})")
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
