"""The stored answer of `provgit validate`: reused only while nothing it depends on changed."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from provgit.cli import main
from provgit.source import read_directory
from provgit.validate.cache import VerdictStore, recording_reads

SAMPLE = Path(__file__).resolve().parents[2] / "sample-config"


def _run(root: Path) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["validate", str(root)], standalone_mode=False)
    code = r.exit_code if r.exception is None or isinstance(r.exception, SystemExit) else -1
    return code, r.output


def test_second_run_answers_from_the_verdict(tmp_path: Path) -> None:
    root = tmp_path / "cfg"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".provgit"))
    first = _run(root)
    assert first[0] == 0 and "valid:" in first[1] and "14 parsed" in first[1]
    second = _run(root)
    assert second[0] == 0 and "0 parsed" in second[1]
    assert VerdictStore(root / ".provgit" / "cache").get(read_directory(root)) is not None


def test_deleting_a_prompt_wav_invalidates_the_verdict(tmp_path: Path) -> None:
    root = tmp_path / "cfg"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".provgit"))
    assert _run(root)[0] == 0
    (root / "ivr/prompts/en-US/hold.wav").unlink()
    code, out = _run(root)
    assert code == 1 and "hold.wav" in out


def test_editing_a_yaml_file_invalidates_the_verdict(tmp_path: Path) -> None:
    root = tmp_path / "cfg"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".provgit"))
    assert _run(root)[0] == 0
    p = root / "organization.yaml"
    p.write_text(p.read_text().replace("- name: Sales\n", "- name: Sales\n  - name: Sales\n"))
    code, out = _run(root)
    assert code == 1 and "duplicate department 'Sales'" in out


def test_recording_reads_notes_missing_and_present_files(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    source, reads = recording_reads(read_directory(tmp_path))
    assert source.read_other("a.wav") == b"RIFF"
    assert source.read_other("gone.wav") is None
    assert reads["gone.wav"] is None and isinstance(reads["a.wav"], str)
