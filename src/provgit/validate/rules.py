"""Rules across records: references resolve, uniqueness network-wide, one MiCollab."""

from __future__ import annotations

from provgit.model.findings import Finding
from provgit.model.state import DesiredState
from provgit.source import ConfigSource


def check_rules(state: DesiredState, source: ConfigSource) -> list[Finding]:
    return []
