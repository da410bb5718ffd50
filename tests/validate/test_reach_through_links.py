"""A reach-through link is a web link: every status page and report links
records through it, so a script URL there would run in the reader's browser."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

NET = """\
elements:
  - {{name: mcl, type: micollab, ceid: 1}}
  - {{name: cs1, type: mivb, ceid: 10, cluster: east, reach_through: "{link}"}}
"""


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(document.cookie)//{key}",
        " JavaScript:alert(1)//{key}",
        "data:text/html,<script>alert(1)</script>{key}",
        "{key}",
    ],
)
def test_a_reach_through_that_is_not_an_http_link_is_refused_at_its_line_and_column(
    tmp_path: Path, link: str
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "provgit.yaml").write_text("version: 1\nnetwork: t\n")
    (config / "net.yaml").write_text(NET.format(link=link))
    state = tmp_path / "state"
    p = subprocess.run(
        [sys.executable, "-m", "provgit", "plan", str(config), "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    out = p.stdout + p.stderr
    assert (
        "net.yaml:3:54: error: [elements/cs1] 'reach_through' must be an http:// or https://" in out
    )
    assert "nothing was planned or changed" in out
    assert not (state / "journal.sqlite").exists()


def test_an_https_reach_through_is_accepted(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "provgit.yaml").write_text("version: 1\nnetwork: t\n")
    link = "https://cs1.example.net/admin/{form}?key={key}"
    (config / "net.yaml").write_text(NET.format(link=link))
    p = subprocess.run(
        [sys.executable, "-m", "provgit", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stdout + p.stderr
