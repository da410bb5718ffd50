"""An event whose message holds a control character (a suspension reason an
older provgit journaled as typed, an element's or a driver's words): the
Atom feed escaped &, <, > and " only, and a character XML 1.0 does not allow
(an escape, a bell) made the whole feed malformed: every feed reader refused
it until the event aged out of the journal (30 days). Shown now as U+XXXX.
Real simulators, the CLI's reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from provgit.journal import Journal

from .helpers import Sim, cli_process, write_config

pytestmark = pytest.mark.slow


def test_an_event_with_a_control_character_leaves_the_feed_well_formed(
    sims: list[Sim], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", sims, users=1)
    assert cli_process("reconcile", str(config)).code == 0
    with Journal.open(config / ".provgit") as journal, journal.transaction():
        journal.add_event(
            "suspended",
            "cs1: writes suspended by ops: cut\x1b[2Jover\x07\x00; changes wait as pending updates",
            element="cs1",
        )
    assert cli_process("reconcile", str(config)).code == 0
    feed = config / ".provgit" / "status" / "feed.atom"
    root = ET.fromstring(feed.read_bytes())  # ParseError: not well-formed
    texts = " ".join(t for t in root.itertext())
    assert "cut<U+001B>[2Jover<U+0007><U+0000>" in texts, texts[:2000]
