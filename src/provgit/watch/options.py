"""What a watcher is told when it starts (the CLI fills it in), and the
wording its modules share."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from provgit.api.watching import SYSTEM_CLOCK, Clock, PlanOptions

# propose: held as in report, and committed to a drift branch (propose.py).
DriftMode = Literal["report", "correct", "propose"]
# The most problems, drifted records or held resources one status entry names.
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class WatchOptions:
    config: Path  # directory mode: the config directory
    state_dir: Path
    repo: str | None = None  # git mode: URL or local path
    ref: str = "main"
    subdir: str = "."  # git mode: the config directory inside the repository
    # None: `drift.mode` of provgit.yaml, else report.
    drift: DriftMode | None = None
    resync_seconds: float = 300.0
    fetch_seconds: float = 60.0
    # A local repository's refs are watched (refs.py); this is the safety re-read.
    ref_check_seconds: float = 10.0
    step_ms: int = 50
    debounce_ms: int = 1600
    host: str = "127.0.0.1"
    # Names a request's Host may give besides the address and localhost (server.py).
    allowed_hosts: tuple[str, ...] = ()
    port: int = 0
    token: str | None = field(default=None, repr=False)
    # Checks GitHub's X-Hub-Signature-256 and GitLab's X-Gitlab-Token on POST /reconcile.
    webhook_secret: str | None = field(default=None, repr=False)
    stop_timeout: float = 10.0
    retry_check_seconds: float = 1.0
    plan: PlanOptions = field(default_factory=PlanOptions)
    # Replicas on a PostgreSQL journal: the lease time (None: `journal.lease_seconds`).
    lease_seconds: float | None = None
    # A fleet (fleet.py): the process's replica id, shared by its networks'
    # watchers, which serve no status of their own and leave the signals to it.
    replica_id: str | None = None
    in_fleet: bool = False
    fleet_url: str | None = None  # the fleet's status server (shown to other replicas)
    # "Now" for sync windows: the system's, or a test's fake clock (injected).
    clock: Clock = SYSTEM_CLOCK


def resource_names(resources: Sequence[tuple[str, str]]) -> list[str]:
    """`kind/key` of the first MAX_PROBLEMS resources, and how many more."""
    shown = [f"{kind}/{key}" for kind, key in resources[:MAX_PROBLEMS]]
    if len(resources) > MAX_PROBLEMS:
        shown.append(f"… and {len(resources) - MAX_PROBLEMS} more")
    return shown


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
