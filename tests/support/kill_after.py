"""Run the provgit CLI with a write hook that SIGKILLs it at a chosen write.

    python tests/support/kill_after.py POINT PROVGIT-ARGS...

POINT is "N": SIGKILL right after the Nth element write call returned, before
its outcome is journaled (the element has the write, the journal does not
know); or "N:before": after the intents of the Nth call were committed, right
before it is sent. The crash tests use it to stop a real `provgit reconcile`
at chosen instants. The hook goes in through provgit's public injection point
(`provgit.apply.install_write_hook`); provgit itself reads no test variable.

Compatibility: without a POINT, it is read from $PROVGIT_TEST_KILL_AFTER_WRITES
(`KILL_HOOK_ENV`), the variable older tests set; `cli_process` in
tests/apply/helpers.py routes a run given that variable through here.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

KILL_HOOK_ENV = "PROVGIT_TEST_KILL_AFTER_WRITES"
LAUNCHER = Path(__file__).resolve()
_POINT = re.compile(r"(\d+)(:before)?")


def parse_point(raw: str) -> tuple[int, str] | None:
    """("N" | "N:before") -> (N, "after" | "before"); None if it is not a point."""
    m = _POINT.fullmatch(raw.strip())
    if m is None:
        return None
    return int(m.group(1)), "before" if m.group(2) else "after"


def command(point: str, *args: str) -> list[str]:
    """The argv that runs `provgit ARGS...` and SIGKILLs it at `point`."""
    return [sys.executable, str(LAUNCHER), point, *args]


def main(argv: list[str]) -> None:
    from provgit.apply import WriteMoment, install_write_hook
    from provgit.cli import main as provgit

    point = parse_point(argv[0]) if argv else None
    if point is not None:
        argv = argv[1:]
    else:
        point = parse_point(os.environ.get(KILL_HOOK_ENV, ""))
    if point is not None:
        at, when = point

        def kill(n: int, moment: WriteMoment) -> None:
            if (n, moment) == (at, when):
                os.kill(os.getpid(), signal.SIGKILL)

        install_write_hook(kill)
    sys.argv = ["provgit", *argv]
    provgit()


if __name__ == "__main__":
    main(sys.argv[1:])
