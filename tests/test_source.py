"""Reading a config directory: what cannot be read is an error, never silently absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provgit.source import read_directory
from provgit.validate import validate_source


def _config(root: Path) -> None:
    (root / "people").mkdir(parents=True)
    (root / "provgit.yaml").write_text("network: n\n")
    (root / "people" / "sales.yaml").write_text("departments:\n  - name: Sales\n")


def test_an_unreadable_folder_is_an_error_not_an_empty_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path)
    real = os.scandir

    def scandir(path: object) -> object:
        if Path(str(path)).name == "people":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    source = read_directory(tmp_path)
    assert [(e.path, e.message) for e in source.errors] == [
        ("people", "cannot read directory: Permission denied")
    ]
    result = validate_source(source, None)
    assert not result.ok
    assert result.diagnostics[0].location.file == "people"


def test_an_unreadable_other_file_reads_as_absent_without_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path)
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    source = read_directory(tmp_path)
    assert source.read_other("a.wav") == b"RIFF"

    def denied(self: Path) -> bool:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "is_file", denied)
    assert source.read_other("a.wav") is None
