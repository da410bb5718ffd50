"""Run the provgit CLI with a write hook that changes a simulator's faults at a
chosen write: an element that goes down, or stops taking provgit's token,
in the middle of a real `provgit reconcile`.

    python tests/support/fault_at.py POINT SIM_URL FAULTS_JSON PROVGIT-ARGS...

POINT is as for tests/support/kill_after.py ("N": right after the Nth element
write call returned; "N:before": right before it is sent). At that point the
hook POSTs FAULTS_JSON to SIM_URL/admin/faults (the simulator must run with
`--admin`) and waits for its answer, so the fault is in force for every later
call. The hook goes in through provgit's public injection point
(`provgit.apply.install_write_hook`); provgit itself reads no test variable.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

LAUNCHER = Path(__file__).resolve()


def command(point: str, sim_url: str, faults: dict[str, object], *args: str) -> list[str]:
    """The argv that runs `provgit ARGS...` and sets `faults` on the simulator at `point`."""
    return [sys.executable, str(LAUNCHER), point, sim_url, json.dumps(faults), *args]


def main(argv: list[str]) -> None:
    from provgit.apply import WriteMoment, install_write_hook
    from provgit.cli import main as provgit
    from support.kill_after import parse_point

    raw, url, body, *rest = argv
    point = parse_point(raw)
    if point is None:
        raise SystemExit(f"fault_at: {raw!r} is not a write point (N or N:before)")

    def fault(n: int, moment: WriteMoment) -> None:
        if (n, moment) == point:
            request = urllib.request.Request(
                url + "/admin/faults",
                data=body.encode(),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()

    install_write_hook(fault)
    sys.argv = ["provgit", *rest]
    provgit()


if __name__ == "__main__":
    # Run as a script: the tests directory holds the `support` package.
    sys.path.insert(0, str(LAUNCHER.parents[1]))
    main(sys.argv[1:])
