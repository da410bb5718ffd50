"""A fleet's default state directory (`.provgit-fleet` beside the fleet
file) follows the rule of a config's `.provgit`: a fleet file kept in a git
checkout could have a commit hold `.provgit-fleet` as a link, and every
network's clone, caches and keys would go where it points. Refused before
anything starts or is written; a `state_dir:` the file names is the
operator's (and may be a link)."""

from __future__ import annotations

from pathlib import Path

from apply.helpers import cli

FLEET = """\
version: 1
journal:
  url: postgresql://provgit@127.0.0.1:1/provgit
leases: {seconds: 10}
networks:
  - {name: east, repo: /srv/git/east.git}
"""


def test_a_linked_default_fleet_state_dir_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    here = tmp_path / "fleet"
    here.mkdir()
    fleet = here / "fleet.yaml"
    fleet.write_text(FLEET)
    (here / ".provgit-fleet").symlink_to(elsewhere)

    for args in (("check",), ("watch", "--port", "0")):
        ran = cli("fleet", args[0], str(fleet), *args[1:])
        assert ran.code == 1, ran.out + ran.err
        line = f"the state directory {here / '.provgit-fleet'} is a symbolic link"
        assert line in ran.err, ran.err
        assert list(elsewhere.iterdir()) == []

    # Named in the file: the operator's choice, a link or not.
    fleet.write_text(FLEET + "state_dir: .provgit-fleet\n")
    checked = cli("fleet", "check", str(fleet))
    assert checked.code == 0, checked.out + checked.err
