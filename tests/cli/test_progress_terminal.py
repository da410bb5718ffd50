"""Progress bars where rich would draw them (a terminal, or FORCE_COLOR /
TTY_COMPATIBLE=1), plain lines elsewhere, and rich not even loaded for a
pipe, a CI log or JSON output (start-up time of every apply and reconcile)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import sys
from provgit.cli.applying import progress_for
with progress_for(sys.argv[1]) as progress:
    print(type(progress).__name__, "rich" in sys.modules)
"""


def _progress(fmt: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    p = subprocess.run(
        [sys.executable, "-c", PROBE, fmt],
        capture_output=True,  # stderr a pipe: not a terminal
        text=True,
        env={**clean, **env},
        check=True,
    )
    return p.stdout.strip()


def test_progress_off_a_terminal_is_plain_lines_without_loading_rich() -> None:
    assert _progress("text") == "PlainProgress False"
    assert _progress("json") == "PlainProgress False"
    assert _progress("text", TTY_COMPATIBLE="0") == "PlainProgress False"


@pytest.mark.parametrize("env", [{"FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "1"}])
def test_progress_is_a_bar_where_rich_says_terminal(env: dict[str, str]) -> None:
    assert _progress("text", **env) == "BarProgress True"
    assert _progress("json", **env) == "PlainProgress False"
