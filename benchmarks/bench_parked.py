"""CPU cost of the status derivation with many pending updates, and of a
swap's parked spare check (spares10).

    .venv/bin/python benchmarks/bench_parked.py [--users 100000] [--pending 10000] [--runs 3]

Run with PYTHONPATH=<tree>/src to time another tree (A/B against main).

1. `report.derive.derive` of --users users on three elements (mcl, their host
   call server, a remote directory entry on the other), every record as
   desired, with --pending pending updates in the journal: half of records
   the config puts there, half of records it does not (a moving user's
   record on the host it leaves), a tenth of them a swap's "on spare DN"
   reason. On this branch each element weighs the latter into their
   resource (`report/leftovers.py`).
2. `plan.numbers.numbers_apart` of --users users' records (four copies) with
   100 owners apart, beside `numbers_held` of the same: what a swap pays, once,
   when a user of its cycle is already on a spare elsewhere (this branch only).

CPU seconds of this process (time.process_time), median of --runs; peak RSS.
"""

from __future__ import annotations

import argparse
import resource
from typing import Any

from _common import median_cpu  # the tree PYTHONPATH names, else this one

from provgit.journal import PendingUpdate
from provgit.projection.project import Target
from provgit.report import derive as dv

ELEMENTS = ("mcl", "cs1", "cs2")


def _network(users: int) -> tuple[Target, dict[str, dv.ElementFacts]]:
    records: dict[str, dict[str, dict[str, dict[str, Any]]]] = {e: {} for e in ELEMENTS}
    origin: dict[str, dict[tuple[str, str], tuple[str, str]]] = {e: {} for e in ELEMENTS}
    for n in range(users):
        login, dn = f"u{n}", str(1000000 + n)
        user = {"login_id": login, "services": [{"dn": dn, "label": "Desk"}]}
        host, other = ("cs1", "cs2") if n % 2 else ("cs2", "cs1")
        records["mcl"].setdefault("users", {})[login] = user
        records[host].setdefault("users", {})[login] = user
        entry = {"dn": dn, "login_id": login, "host": host}
        records[other].setdefault("remote_directory", {})[dn] = entry
        origin[other][("remote_directory", dn)] = ("users", login)
    target = Target(records, {}, origin)
    facts = {
        e: dv.ElementFacts(
            e,
            "micollab" if e == "mcl" else "mivb",
            "running",
            7,
            {c: {k: (f, 3) for k, f in recs.items()} for c, recs in records[e].items()},
        )
        for e in ELEMENTS
    }
    return target, facts


def _journal(users: int, pending: int) -> dv.JournalFacts:
    rows: dict[tuple[str, str, str], PendingUpdate] = {}
    for i in range(pending):
        n = i * (users // max(pending, 1))
        login = f"u{n}"
        host, other = ("cs1", "cs2") if n % 2 else ("cs2", "cs1")
        element = host if i % 2 else other  # half not the config's there
        reason = (
            f"Move pending: users/{login} is on spare DN 9989 for a number swap; "
            f"the next run gives it {1000000 + n}"
            if i % 10 == 0
            else "element is offline"
        )
        rows[(element, "users", login)] = PendingUpdate(
            element, "users", login, "modify", "users", login, 1, 0.0, 0.0, 0.0, reason
        )
    return dv.JournalFacts(rows, {}, {}, {})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--pending", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    target, facts = _network(args.users)
    journal = _journal(args.users, args.pending)
    cpu = median_cpu(args.runs, lambda: dv.derive(target, facts, journal))
    d = dv.derive(target, facts, journal)
    done = sum(r.completed for r in d.resources.values())
    print(f"derive, {args.users} users, {args.pending} pending: {cpu:.3f} s CPU ({done} done)")
    try:
        from provgit.plan.numbers import numbers_apart, numbers_held
    except ImportError:
        numbers_apart = None  # type: ignore[assignment]
    if numbers_apart is not None:
        copies = [records for records in target.records.values()] * 2
        owners = {f"u{n}" for n in range(0, args.users, max(args.users // 100, 1))}
        held = median_cpu(args.runs, lambda: numbers_held(copies))
        apart = median_cpu(args.runs, lambda: numbers_apart(copies, owners))
        print(f"numbers_held {held:.3f} s CPU, numbers_apart (100 owners) {apart:.3f} s CPU")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
