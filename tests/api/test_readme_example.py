"""The README's "Using provgit from Python" example runs as written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from .conftest import ROOT


def _example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using provgit from Python", 1)
    assert len(section) == 2, "the README's Python section moved"
    found = re.search(r"```python\n(.*?)```", section[1], re.S)
    assert found, "the README's Python example moved"
    return found.group(1)


def test_the_readme_python_example_plans_applies_and_ends_in_sync(
    sample: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The example names sample-config relative to where it runs.
    shutil.move(sample, tmp_path / "sample-config")
    monkeypatch.chdir(tmp_path)
    exec(compile(_example(), "README.md", "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    assert "Sync Completed exit code 0" in out
    assert out.rstrip().endswith("in sync: True")
    assert (tmp_path / "sample-config" / ".provgit" / "journal.sqlite").is_file()
