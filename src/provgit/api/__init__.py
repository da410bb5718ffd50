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
from provgit.api.planning import PlanRun
from provgit.api.running import Applied
from provgit.api.saved import SavedPlan, open_saved_plan
from provgit.api.sources import default_state_dir
from provgit.api.status import Hold, Status
from provgit.apply import ApplyResult
from provgit.apply.progress import NoProgress, Progress
from provgit.journal import DistributionError, PendingUpdate
from provgit.journal.location import use_journal_url
from provgit.plan import Plan, PlanOptions
from provgit.plan.model import FORMAT as PLAN_FORMAT
from provgit.source import ConfigSource
from provgit.validate.cache import Verdict

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
    "UsageProblem",
    "Verdict",
    "default_state_dir",
    "inspect_saved_plan",
    "kind_named",
    "kind_names",
    "open_saved_plan",
    "retry_choice",
    "use_journal_url",
]
