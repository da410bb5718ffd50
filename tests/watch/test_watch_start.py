"""How `provgit watch` starts: the URL line in the log format asked for, and a
ref that does not exist refused at once (real processes, 127.0.0.1 only)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import STOP_TIMEOUT, TOKEN, WATCH, Watch, commit_all, make_repo, start_watch

SAMPLE = Path(__file__).resolve().parents[2] / "sample-config"


def _sample(dest: Path) -> Path:
    shutil.copytree(SAMPLE, dest, ignore=shutil.ignore_patterns(".provgit"))
    return dest


@pytest.mark.slow
@pytest.mark.parametrize("as_url", [False, True], ids=["local-path", "cloned-url"])
def test_watch_of_a_ref_the_repository_lacks_exits_1_naming_its_branches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_url: bool
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    bare, work = make_repo(tmp_path)
    _sample(work / "config")
    commit_all(work, "sample")
    repo = bare.as_uri() if as_url else str(bare)
    p = subprocess.run(
        [*WATCH, "config", "--repo", repo, "--ref", "nosuch", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PROVGIT_WATCH_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"},
    )
    assert p.returncode == 1, p.stdout + p.stderr
    assert "has no branch or revision 'nosuch' (branches: main)" in p.stderr
    assert "listening" not in p.stdout


@pytest.mark.slow
def test_json_log_format_prints_the_listening_line_as_json(
    tmp_path: Path, watches: list[Watch]
) -> None:
    config = _sample(tmp_path / "config")
    w = start_watch([str(config)])  # --log-format json
    watches.append(w)
    # start_watch found the URL in a JSON line on stdout.
    assert w.url.startswith("http://127.0.0.1:")
    code, _, _ = w.get("/healthz")
    assert code == 200


@pytest.mark.slow
def test_plain_log_format_prints_listening_on_url(tmp_path: Path) -> None:
    config = _sample(tmp_path / "config")
    proc = subprocess.Popen(
        [*WATCH, str(config), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        with pytest.raises(ValueError):
            json.loads(line)
    finally:
        proc.terminate()
        code = proc.wait(timeout=STOP_TIMEOUT)
    assert code == 0  # SIGTERM: a clean exit
