"""Rules across records: references resolve, uniqueness network-wide, one MiCollab.

`build_state` has already checked every record on its own; what is left needs
several records at once. Each rule builds its lookup sets once, so the cost is
linear in the size of the network (100,000 users in a fraction of a second).
"""

from __future__ import annotations

from provgit.model.findings import Finding
from provgit.model.state import DesiredState
from provgit.source import ConfigSource
from provgit.validate.rules_ivr import IvrRules, find_cycles
from provgit.validate.rules_network import NetworkRules
from provgit.validate.rules_settings import SettingsRules
from provgit.validate.rules_users import DIRECTORY_NAME_MAX, UserRules

__all__ = ["DIRECTORY_NAME_MAX", "check_rules", "find_cycles"]


def check_rules(state: DesiredState, source: ConfigSource) -> list[Finding]:
    out: list[Finding] = []
    _Rules(state, source, out).run()
    return out


class _Rules(NetworkRules, UserRules, IvrRules, SettingsRules):
    def run(self) -> None:
        self.check_elements()
        self.check_templates()
        self.check_roles()
        self.check_users()
        self.check_ivr()
        self.check_settings()
