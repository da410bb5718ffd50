"""CPU cost of a number swap's spare on a large network, and of the apply summary.

    .venv/bin/python benchmarks/bench_spares.py [--users 100000] [--runs 3]

Run with PYTHONPATH=<tree>/src to time another tree (an A/B against main: a
tree without `plan/numbers.py` is timed through its `plan/swaps.py`).

1. The numbers a spare must pass over (`plan/numbers.py`: every number any
   record names, in the config and as observed, with the dial-plan prefixes)
   and one spare, on --users users as four elements hold them (a phone
   record and a remote directory entry each, the config's and three
   observations' copies): done only when a plan holds a swap.
2. `render.apply_summary.lines` of a first rollout's result (--users x 3
   writes on five elements), run after every apply.

CPU seconds of this process (time.process_time), median of --runs; peak RSS.
"""

from __future__ import annotations

import argparse
import resource
from collections.abc import Callable
from typing import Any

from _common import median_cpu  # the tree PYTHONPATH names, else this one

from provgit.apply.result import ApplyResult, ElementResult, OpResult
from provgit.render import apply_summary


def _spare_of(records: list[dict[str, dict[str, Any]]]) -> Callable[[], str]:
    try:
        from provgit.plan.numbers import Taken, free_dn, numbers_held

        return lambda: free_dn("3000", Taken(numbers_held(records)))
    except ImportError:  # main before plan/numbers.py
        from provgit.plan import swaps

        return lambda: swaps.free_dn("3000", swaps.dns_in_use(records))  # type: ignore[attr-defined]


def _records(users: int) -> list[dict[str, dict[str, Any]]]:
    phones = {
        f"u{n}": {
            "login_id": f"u{n}",
            "first_name": "Ann",
            "last_name": f"Person{n}",
            "directory_name": f"Person{n}, Ann",
            "services": [
                {"dn": str(1000000 + n), "label": "Desk", "device_type": "6920", "cos_day": "1"}
            ],
        }
        for n in range(users)
    }
    directory = {
        str(1000000 + n): {"dn": str(1000000 + n), "login_id": f"u{n}", "host": "cs1"}
        for n in range(users)
    }
    return [{"users": phones, "remote_directory": directory}] * 4


def _result(users: int) -> ApplyResult:
    result = ApplyResult(1, "bench")
    per = users * 3 // 5
    for e in range(5):
        element = ElementResult(f"cs{e}", "mivb", "Sync Completed", "applied")
        element.operations = [
            OpResult("add", "users", f"u{n}", "users", f"u{n}", "ok") for n in range(per)
        ]
        result.elements.append(element)
    return result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    spare = _spare_of(_records(a.users))
    print(f"spare {spare()}: {median_cpu(a.runs, spare):.3f} s CPU (median of {a.runs})")
    result = _result(a.users)
    summary = median_cpu(a.runs, lambda: apply_summary.lines(result))
    print(f"apply summary of {a.users * 3 // 5 * 5} writes: {summary:.3f} s CPU")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"peak RSS {peak} MB")


if __name__ == "__main__":
    main()
