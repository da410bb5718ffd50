"""Adversary 11: `provgit init` into a folder holding a link where it writes.
A dangling link (`users.yaml -> somewhere/else`) was not "present", so init
wrote provgit.yaml, .gitignore and elements.yaml, then died with a
FileExistsError traceback: half a scaffold, against "nothing is written". A
`.github` link to a folder elsewhere had init write its workflow there. Both
are now refused before anything is written, naming the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from apply.helpers import cli
from provgit import scaffold


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("rel", ["users.yaml", "provgit.yaml", scaffold.WORKFLOW_PATH])
def test_init_refuses_a_dangling_link_where_it_writes_and_writes_nothing(
    tmp_path: Path, rel: str
) -> None:
    config = tmp_path / "voice"
    elsewhere = tmp_path / "elsewhere" / "target"
    link = config / rel
    link.parent.mkdir(parents=True)
    link.symlink_to(elsewhere)
    before = _tree(config)
    r = cli("init", str(config))
    assert r.code == 1, r.out + r.err
    assert "not overwriting" in r.err and rel in r.err and "nothing was written" in r.err
    assert _tree(config) == before
    assert not elsewhere.exists() and not elsewhere.parent.exists()


def test_init_refuses_a_linked_folder_it_would_write_into(tmp_path: Path) -> None:
    config = tmp_path / "voice"
    config.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (config / ".github").symlink_to(outside)
    r = cli("init", str(config))
    assert r.code == 1, r.out + r.err
    assert "not overwriting" in r.err and scaffold.WORKFLOW_PATH in r.err
    assert _tree(outside) == []
    assert _tree(config) == [".github"]
