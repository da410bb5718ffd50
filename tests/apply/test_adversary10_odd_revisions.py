"""An element that answers writes with revisions that are no revision
(tests/support/odd_revision_element.py in front of a real simulator): one
past 63 bits stopped the run with a traceback at the journal (SQLite's
INTEGER), before the other elements' outcomes were written, and every run
after it the same way; a string or a float stopped it comparing revisions.
Such an answer is not the element API's now: the write call is taken as
unanswered, sent again, met as already there and checked against the
element's feed; the status says what the element holds, and no run stops."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from .helpers import Sim, cli_process, hostile, status_by_element, write_config

pytestmark = pytest.mark.slow

ODD = Path(__file__).parent.parent / "support" / "odd_revision_element.py"


@pytest.mark.parametrize("mode", ["huge", "text", "float"])
def test_a_write_answered_with_a_revision_that_is_none_stops_no_run(
    sims: list[Sim], tmp_path: Path, mode: str
) -> None:
    with contextlib.ExitStack() as stack:
        cs1 = stack.enter_context(hostile(ODD, sims[0], mode))
        config = write_config(tmp_path / "config", [cs1, sims[1]], users=2)
        for _ in range(2):
            ran = cli_process("reconcile", str(config))
            assert "Traceback" not in ran.err, ran.err[-2000:]
            assert ran.code == 0, ran.out + ran.err
            by = status_by_element(config)
            assert by == {"mcl": "Sync Completed", "cs1": "Sync Completed", "cs2": "Sync Completed"}
            # ...which is true: cs1 holds its user (as checked through its feed).
            assert "user0" in sims[0].records()["users"]
