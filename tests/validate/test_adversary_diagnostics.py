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


@pytest.mark.parametrize(
    ("record", "where", "what"),
    [
        ('departments:\n  - name: "Z\\e[2Jed"\n', "2:5", "a control character (U+001B)"),
        (
            'templates:\n  - name: Basic2\n    description: "x\\u202ey"\n'
            '    phones: [{label: Desk, device_type: "6920", primary: true}]\n'
            "    cos: {day: 1}\n",
            "3:5",
            "an invisible character (U+202E RIGHT-TO-LEFT OVERRIDE)",
        ),
        (
            'subroutines:\n  - name: S\n    steps: [{action: hangup, "\\u200bx": 1}]\n',
            "3:30",
            "an invisible character (U+200B ZERO WIDTH SPACE)",
        ),
    ],
)
def test_control_and_invisible_characters_in_any_record_text_are_refused(
    tmp_path: Path, record: str, where: str, what: str
) -> None:
    write(tmp_path, {**BASE, "site/case.yaml": record})
    result = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert f"site/case.yaml:{where}: error:" in result.output, result.output
    assert what in result.output, result.output
    assert "\x1b" not in result.output


def test_tabs_and_line_breaks_in_a_description_are_fine(tmp_path: Path) -> None:
    record = "departments:\n  - name: Ops\n    description: |\n      one\ttwo\n      three\n"
    write(tmp_path, {**BASE, "site/case.yaml": record})
    result = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert result.exit_code == 0, result.output
