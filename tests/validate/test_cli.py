"""`provgit validate` through the real command line: exit codes, formats, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from provgit.cli import main

from .base import BASE, write
from .test_bad_inputs import CASES, _write_symlinks

BAD = {"site/case.yaml": "roles:\n  - name: Agent\n    template: Basc\n"}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provgit", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    # An uncaught exception (a traceback for the user) shows up as a non-SystemExit.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_valid_config_exits_0_in_a_real_process(tmp_path: Path) -> None:
    write(tmp_path, BASE)
    p = _run("validate", str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("valid: 4 file(s), 5 elements, 2 classes_of_service")
    assert p.stderr == ""


def test_invalid_config_exits_1_in_a_real_process_with_location_and_hint(tmp_path: Path) -> None:
    write(tmp_path, {**BASE, **BAD})
    p = _run("validate", str(tmp_path))
    assert p.returncode == 1
    assert (
        "site/case.yaml:3:5: error: [roles/Agent] template 'Basc' is not defined\n"
        "    hint: did you mean 'Basic'?\n"
    ) in p.stdout
    assert "nothing was changed" in p.stdout
    assert "Traceback" not in p.stdout + p.stderr


def test_json_format_lists_each_problem_with_its_position(tmp_path: Path) -> None:
    write(tmp_path, {**BASE, **BAD})
    code, out = _invoke("validate", str(tmp_path), "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["valid"] is False and doc["errors"] == 1
    (d,) = doc["diagnostics"]
    assert (d["file"], d["line"], d["column"]) == ("site/case.yaml", 3, 5)
    assert (d["kind"], d["key"], d["code"]) == ("roles", "Agent", "reference")
    assert d["hint"] == "did you mean 'Basic'?"


def test_json_format_of_a_valid_config_has_counts(tmp_path: Path) -> None:
    write(tmp_path, BASE)
    code, out = _invoke("validate", str(tmp_path), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["valid"] is True and doc["diagnostics"] == []
    assert doc["counts"]["elements"] == 5


def test_github_format_prints_error_annotations(tmp_path: Path) -> None:
    write(tmp_path, {**BASE, **BAD})
    code, out = _invoke("validate", str(tmp_path), "--format", "github")
    assert code == 1
    assert out.strip() == (
        "::error file=site/case.yaml,line=3,col=5,title=provgit roles/Agent::"
        "template 'Basc' is not defined (hint: did you mean 'Basic'?)"
    )


def test_github_format_of_a_valid_config_prints_nothing(tmp_path: Path) -> None:
    write(tmp_path, BASE)
    assert _invoke("validate", str(tmp_path), "--format", "github") == (0, "")


def test_missing_path_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    p = _run("validate", str(tmp_path / "nope"))
    assert p.returncode == 1
    assert "does not exist" in p.stderr
    assert "Traceback" not in p.stdout + p.stderr


def test_path_that_is_a_file_exits_1(tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_text("users: []\n")
    code, out = _invoke("validate", str(tmp_path / "f.yaml"))
    assert code == 1
    assert "not a directory" in out or "is a file" in out


@pytest.mark.parametrize("name", list(CASES))
def test_no_bad_input_gives_a_traceback(tmp_path: Path, name: str) -> None:
    root = tmp_path / "config"
    root.mkdir()
    (tmp_path / "outside.wav").write_bytes(b"RIFF\0\0\0\0WAVE")
    write(root, {**BASE, **_write_symlinks(root, CASES[name].files)})
    for fmt in ("text", "json", "github"):
        code, out = _invoke("validate", str(root), "--no-cache", "--format", fmt)
        assert code == 1, out
        assert "Traceback" not in out


@pytest.mark.parametrize("command", ["validate", "plan", "reconcile"])
def test_a_folder_without_yaml_is_a_usage_error_not_an_empty_network(
    command: str, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("not a config\n")
    result = CliRunner().invoke(main, [command, str(tmp_path)])
    assert result.exit_code == 1
    assert "no provgit.yaml in" in result.output
    assert "is this the config directory?" in result.output
    assert not (tmp_path / ".provgit").exists()
