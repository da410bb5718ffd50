"""provgit as a library: the one way the command line and the watcher
reach the pipeline (the watcher's own needs: `provgit.api.watching`).

    from provgit.api import Config

    config = Config.open("sample-config")          # a directory (or Config.open_commit)
    verdict = config.validate()                    # every problem, with file:line:col
    run = asyncio.run(config.plan())               # what would change (PlanRun.plan)
    applied = asyncio.run(config.apply(run))       # apply it, write the status reports
    config.status().in_sync                        # derived, no element contacted

Every call returns a value object (`PlanRun`, `Applied`, `Status`, `ErrorList`,
`Reapplied`, `ImportReport`, ...) and raises a `ProvgitError` subclass when it
cannot do what was asked; nothing prints and nothing exits. Planning, applying
and importing contact the elements and are coroutines; the rest is synchronous.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provgit.api.config import Config, Diff, PlanNotes, SignedPlan
    from provgit.api.distribution import Deleted, ErrorList, Reapplied, retry_choice
    from provgit.api.errors import (
        ConfigNotFound,
        Interrupted,
        InvalidConfig,
        JournalUnavailable,
        NothingToDo,
        PlanRefused,
        ProvgitError,
        UsageProblem,
    )
    from provgit.api.importing import ImportReport
    from provgit.api.inspect import (
        InspectedPlan,
        Landings,
        Resources,
        inspect_saved_plan,
        kind_named,
        kind_names,
    )
    from provgit.api.journal import migrate_journal
    from provgit.api.planning import PlanRun, memo_written_behind
    from provgit.api.running import Applied
    from provgit.api.saved import SavedPlan, open_saved_plan
    from provgit.api.sources import default_state_dir
    from provgit.api.status import Hold, Status
    from provgit.apply import ApplyResult
    from provgit.apply.progress import NoProgress, Progress
    from provgit.journal import DistributionError, PendingUpdate
    from provgit.journal.location import network_schema, use_journal_url, use_network
    from provgit.journal.transfer import Transfer
    from provgit.plan import Plan, PlanOptions
    from provgit.plan.model import FORMAT as PLAN_FORMAT
    from provgit.source import ConfigSource
    from provgit.validate.cache import Verdict

# Loaded on first use (PEP 562): `from provgit.api import Config` must not load
# the apply engine and the drivers for `provgit validate` or `provgit status`.
_LAZY: dict[str, tuple[str, str]] = {
    "Config": ("provgit.api.config", "Config"),
    "Diff": ("provgit.api.config", "Diff"),
    "PlanNotes": ("provgit.api.config", "PlanNotes"),
    "SignedPlan": ("provgit.api.config", "SignedPlan"),
    "Deleted": ("provgit.api.distribution", "Deleted"),
    "ErrorList": ("provgit.api.distribution", "ErrorList"),
    "Reapplied": ("provgit.api.distribution", "Reapplied"),
    "retry_choice": ("provgit.api.distribution", "retry_choice"),
    "ConfigNotFound": ("provgit.api.errors", "ConfigNotFound"),
    "Interrupted": ("provgit.api.errors", "Interrupted"),
    "InvalidConfig": ("provgit.api.errors", "InvalidConfig"),
    "JournalUnavailable": ("provgit.api.errors", "JournalUnavailable"),
    "NothingToDo": ("provgit.api.errors", "NothingToDo"),
    "PlanRefused": ("provgit.api.errors", "PlanRefused"),
    "ProvgitError": ("provgit.api.errors", "ProvgitError"),
    "UsageProblem": ("provgit.api.errors", "UsageProblem"),
    "ImportReport": ("provgit.api.importing", "ImportReport"),
    "InspectedPlan": ("provgit.api.inspect", "InspectedPlan"),
    "Landings": ("provgit.api.inspect", "Landings"),
    "Resources": ("provgit.api.inspect", "Resources"),
    "inspect_saved_plan": ("provgit.api.inspect", "inspect_saved_plan"),
    "kind_named": ("provgit.api.inspect", "kind_named"),
    "kind_names": ("provgit.api.inspect", "kind_names"),
    "PlanRun": ("provgit.api.planning", "PlanRun"),
    "memo_written_behind": ("provgit.api.planning", "memo_written_behind"),
    "Applied": ("provgit.api.running", "Applied"),
    "SavedPlan": ("provgit.api.saved", "SavedPlan"),
    "open_saved_plan": ("provgit.api.saved", "open_saved_plan"),
    "default_state_dir": ("provgit.api.sources", "default_state_dir"),
    "Hold": ("provgit.api.status", "Hold"),
    "Status": ("provgit.api.status", "Status"),
    "ApplyResult": ("provgit.apply", "ApplyResult"),
    "NoProgress": ("provgit.apply.progress", "NoProgress"),
    "Progress": ("provgit.apply.progress", "Progress"),
    "DistributionError": ("provgit.journal", "DistributionError"),
    "PendingUpdate": ("provgit.journal", "PendingUpdate"),
    "use_journal_url": ("provgit.journal.location", "use_journal_url"),
    "use_network": ("provgit.journal.location", "use_network"),
    "network_schema": ("provgit.journal.location", "network_schema"),
    "migrate_journal": ("provgit.api.journal", "migrate_journal"),
    "Transfer": ("provgit.journal.transfer", "Transfer"),
    "Plan": ("provgit.plan", "Plan"),
    "PlanOptions": ("provgit.plan", "PlanOptions"),
    "PLAN_FORMAT": ("provgit.plan.model", "FORMAT"),
    "ConfigSource": ("provgit.source", "ConfigSource"),
    "Verdict": ("provgit.validate.cache", "Verdict"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'provgit.api' has no attribute {name!r}") from None
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value


__all__ = [
    "PLAN_FORMAT",
    "Applied",
    "ApplyResult",
    "Config",
    "ConfigNotFound",
    "ConfigSource",
    "Deleted",
    "Diff",
    "DistributionError",
    "ErrorList",
    "Hold",
    "ImportReport",
    "InspectedPlan",
    "Interrupted",
    "InvalidConfig",
    "JournalUnavailable",
    "Landings",
    "NoProgress",
    "NothingToDo",
    "PendingUpdate",
    "Plan",
    "PlanNotes",
    "PlanOptions",
    "PlanRefused",
    "PlanRun",
    "Progress",
    "ProvgitError",
    "Reapplied",
    "Resources",
    "SavedPlan",
    "SignedPlan",
    "Status",
    "Transfer",
    "UsageProblem",
    "Verdict",
    "default_state_dir",
    "inspect_saved_plan",
    "kind_named",
    "kind_names",
    "memo_written_behind",
    "migrate_journal",
    "network_schema",
    "open_saved_plan",
    "retry_choice",
    "use_journal_url",
    "use_network",
]
