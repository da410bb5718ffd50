"""A suspension's reason (and who) typed with a terminal escape sequence, by
whoever holds the watcher's token (POST /suspend) or a shell: it was kept as
typed and printed raw by every `provgit status` on an admin's terminal (an
OSC retitling the window, writing the clipboard; a carriage return and erase
drawing "Sync Completed" over the element's line). Kept now as one line with
the control characters shown as U+XXXX. Real simulators, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Sim, cli_process, write_config

pytestmark = pytest.mark.slow

WHO = {"LOGNAME": "ops\x1b[8m", "USER": "ops\x1b[8m"}
REASON = "cutover\r\x1b[2K  cs1        Sync Completed\x1b]52;c;cm0gLXJmIH4=\x07\nsecond line"


def test_a_suspension_reason_with_escape_sequences_reaches_no_terminal(
    sims: list[Sim], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", sims, users=1)
    assert cli_process("reconcile", str(config)).code == 0
    held = cli_process("suspend", str(config), "--element", "cs1", "--reason", REASON, env=WHO)
    assert held.code == 0, held.out + held.err
    for argv in (("status", str(config)), ("status", str(config), "--format", "json")):
        shown = cli_process(*argv)
        for bad in ("\x1b", "\x07", "\r"):
            assert bad not in shown.out + shown.err, (bad, shown.out)
    text = cli_process("status", str(config)).out
    assert "cutover<U+000D><U+001B>[2K" in text, text
    assert "second line" in text and "\nsecond line" not in text, text
    resumed = cli_process("resume", str(config), "--element", "cs1", env=WHO)
    assert "\x1b" not in resumed.out + resumed.err, resumed.out
