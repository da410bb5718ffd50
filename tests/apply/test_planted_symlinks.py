"""A symlink planted where provgit writes in its state directory is never written through.

Whoever may create a file in the state directory (a shared CI cache, a careless
`ln -s`) must not make provgit overwrite or truncate the file the link points to.
"""

from __future__ import annotations

import json
from pathlib import Path

from .helpers import cli, read_store, write_config

VICTIM = "export PATH=$HOME/bin:$PATH  # the user's own file\n"


def test_a_symlink_planted_at_an_element_lock_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "config", [], users=0, embedded_mcl=True)
    victim = tmp_path / "bashrc"
    victim.write_text(VICTIM)
    locks = config / ".provgit" / "locks"
    locks.mkdir(parents=True)
    (locks / "mcl.lock").symlink_to(victim)

    ran = cli("reconcile", str(config))
    assert ran.code == 3, ran.out + ran.err
    assert victim.read_text() == VICTIM
    assert "locks/mcl.lock is a symbolic link" in ran.out + ran.err
    # Refused: nothing reached the element, and the status says so.
    store = config / ".provgit" / "elements" / "mcl.sqlite"
    assert read_store(store).get("templates", {}) == {}
    assert "Sync Completed" not in ran.out

    (locks / "mcl.lock").unlink()
    again = cli("reconcile", str(config))
    assert again.code == 0, again.out + again.err
    assert victim.read_text() == VICTIM
    assert "Basic" in read_store(store)["templates"]


def test_a_symlink_planted_at_the_journal_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "config", [], users=0, embedded_mcl=True)
    victim = tmp_path / "bashrc"
    victim.write_text(VICTIM)
    victim.chmod(0o644)
    state = config / ".provgit"
    state.mkdir(parents=True)
    (state / "journal.sqlite").symlink_to(victim)

    ran = cli("reconcile", str(config))
    assert ran.code != 0, ran.out + ran.err
    assert "journal.sqlite is a symbolic link" in ran.out + ran.err
    assert "Traceback" not in ran.out + ran.err
    # Neither narrowed (chmod through the link) nor written as a database.
    assert victim.read_text() == VICTIM
    assert victim.stat().st_mode & 0o777 == 0o644
    store = state / "elements" / "mcl.sqlite"
    assert not store.exists() or read_store(store).get("templates", {}) == {}


def test_a_symlink_planted_at_an_embedded_element_store_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "config", [], users=0, embedded_mcl=True)
    victim = tmp_path / "bashrc"
    victim.write_text(VICTIM)
    victim.chmod(0o644)
    elements = config / ".provgit" / "elements"
    elements.mkdir(parents=True)
    (elements / "mcl.sqlite").symlink_to(victim)

    ran = cli("reconcile", str(config))
    assert ran.code != 0, ran.out + ran.err
    assert "mcl.sqlite is a symbolic link" in ran.out + ran.err
    assert "Traceback" not in ran.out + ran.err
    assert "Sync Completed: " not in ran.out
    assert victim.read_text() == VICTIM
    assert victim.stat().st_mode & 0o777 == 0o644
    # What the admin and the CI gate read afterwards: not in sync.
    status = cli("status", str(config), "--format", "json")
    assert status.code != 0, status.out + status.err
    doc = json.loads(status.out)
    assert doc["elements"]["mcl"]["status"] != "Sync Completed", doc["elements"]["mcl"]
    saved = json.loads((config / ".provgit" / "status" / "status.json").read_text())
    assert saved["elements"]["mcl"]["status"] != "Sync Completed"
