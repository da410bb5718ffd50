"""A config file's name is the repository's (anyone's pull request): one
named with an escape sequence, a bell and a carriage return was printed as
it was by `provgit validate` (text, and GitHub annotations in the CI log)
and `provgit plan`, beside every problem in it: the admin's screen cleared,
the window retitled, a fake "valid" drawn over the line. Shown now with the
characters as U+XXXX (the JSON keeps the name as it is, escaped)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .base import BASE, write

NAME = "users\x1b[2J\x1b]0;owned\x07\rvalid.yaml"


@pytest.mark.parametrize(
    "argv",
    [
        ("validate",),
        ("validate", "--format", "github"),
        ("plan",),
    ],
)
def test_a_file_name_with_control_characters_is_shown_not_sent_to_the_terminal(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    write(tmp_path, {**BASE, NAME: "users:\n  - login_id: x\n    bogus: [\n"})
    ran = subprocess.run(
        [sys.executable, "-m", "provgit", *argv, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 1, ran.stdout + ran.stderr
    out = ran.stdout + ran.stderr
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out, repr(out)
    assert "users<U+001B>[2J" in out, out


def test_the_json_diagnostics_keep_the_file_name_as_it_is(tmp_path: Path) -> None:
    write(tmp_path, {**BASE, NAME: "users:\n  - login_id: x\n    bogus: [\n"})
    ran = subprocess.run(
        [sys.executable, "-m", "provgit", "validate", "--format", "json", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    files = {d["file"] for d in json.loads(ran.stdout)["diagnostics"]}
    assert NAME in files, files
