"""A full disk (here: a file size limit on the provgit process, which fails
every write past it with EFBIG as ENOSPC would) gives a clear error, no
traceback, and leaves every file provgit kept as it was."""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

from .helpers import PROVGIT, read_store, write_config


def _no_file_may_grow() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, 1))


def test_reconcile_on_a_full_disk_says_so_and_keeps_the_last_report_and_stores(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "config", [], users=0, embedded_mcl=True)
    first = subprocess.run(
        [*PROVGIT, "reconcile", str(config)], capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stdout + first.stderr
    state = config / ".provgit"
    status = (state / "status" / "status.json").read_bytes()
    store = read_store(state / "elements" / "mcl.sqlite")
    (config / "net.yaml").write_text(
        (config / "net.yaml").read_text().replace("comment: Sales", "comment: Outside sales")
    )

    full = subprocess.run(
        [*PROVGIT, "reconcile", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_no_file_may_grow,
    )
    assert full.returncode == 1, full.stdout + full.stderr
    assert "Traceback" not in full.stderr
    assert "the disk is full or a file size limit was reached" in full.stderr, full.stderr
    assert "Sync Completed" not in full.stdout
    assert (state / "status" / "status.json").read_bytes() == status
    assert read_store(state / "elements" / "mcl.sqlite") == store
    assert not [p for p in (state / "status").iterdir() if p.name.startswith(".")]
