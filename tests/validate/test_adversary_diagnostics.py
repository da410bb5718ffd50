"""What a YAML author writes cannot drive the terminal or flood the log of whoever validates.

A record's key is shown beside each of its problems (`[users/KEY]`). It was
printed as written: an escape sequence in a login id cleared the admin's
screen or retitled the window, a carriage return overwrote the line with a
fake "valid", and a 5 MB name was echoed whole into the CI log.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from provgit.cli import main

from .base import BASE, TELEPHONY, write

EVIL = r"ev\e[2J\e]0;owned\a\rvalid: 4 file(s)"


def _run(root: Path, login: str, fmt: str) -> str:
    telephony = TELEPHONY.replace("login_id: alice", f'login_id: "{login}"')
    write(root, {**BASE, "telephony.yaml": telephony})
    result = CliRunner().invoke(main, ["validate", str(root), "--format", fmt])
    assert result.exit_code == 1, result.output
    return result.output


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_control_characters_of_a_key_are_shown_not_sent_to_the_terminal(
    tmp_path: Path, fmt: str
) -> None:
    out = _run(tmp_path, EVIL, fmt)
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out, repr(out)
    assert "<U+001B>" in out


def test_a_huge_key_is_shortened_where_it_is_named(tmp_path: Path) -> None:
    out = _run(tmp_path, "a" * 200_000, "text")
    assert len(out) < 10_000, len(out)
    assert "[users/aaaa" in out and "…]" in out
