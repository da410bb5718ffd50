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
    real = os.open

    def denied(path: str, flags: int, *args: int) -> int:
        if path.endswith("a.wav"):
            raise PermissionError(13, "Permission denied", path)
        return real(path, flags, *args)

    monkeypatch.setattr(os, "open", denied)
    assert source.read_other("a.wav") is None


def test_other_files_are_read_only_as_plain_files_inside_the_root(tmp_path: Path) -> None:
    """Prompt audio named by the config: a link inside the tree is followed, one
    out of it, a folder, a FIFO (which would block a read), a name with NUL and
    a path leaving the root read as absent."""
    config = tmp_path / "config"
    _config(config)
    (config / "audio").mkdir()
    (config / "audio" / "a.wav").write_bytes(b"RIFF-a")
    (tmp_path / "outside.wav").write_bytes(b"secret")
    os.symlink("a.wav", config / "audio" / "same.wav")
    os.symlink(tmp_path / "outside.wav", config / "audio" / "out.wav")
    os.symlink(tmp_path, config / "up")
    os.mkfifo(config / "audio" / "pipe.wav")
    read = read_directory(config).read_other
    assert read("audio/a.wav") == b"RIFF-a"
    assert read("audio/same.wav") == b"RIFF-a"
    assert read("audio/../audio/a.wav") == b"RIFF-a"
    for absent in (
        "audio/out.wav",
        "up/outside.wav",
        "../outside.wav",
        str(tmp_path / "outside.wav"),
        "audio",
        "audio/",
        "audio/pipe.wav",
        "audio/missing.wav",
        "audio/a\0.wav",
        "..",
    ):
        assert read(absent) is None, absent
