"""Reports of a run. For now one document: `status.json` (issue 6 renders more from it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provgit.apply.result import ApplyResult
from provgit.fsutil import atomic_write
from provgit.journal import Journal

STATUS_FORMAT = "provgit.status/1"
STATUS_FILE = "status.json"
# Bounded: a report lists problems in full, successes only as counts.
MAX_EVENTS = 50


def write_status(reports_dir: Path, result: ApplyResult, journal: Journal) -> Path:
    """Write `<reports_dir>/status.json` for a finished run (atomically) and return its path."""
    events = journal.recent_events(MAX_EVENTS)
    doc: dict[str, Any] = {
        "format": STATUS_FORMAT,
        "network": result.network,
        "run": result.to_json(full=False),
        "elements": journal.element_statuses(),
        "resources_not_completed": journal.resource_statuses(not_completed_only=True),
        "distribution_errors": [e.to_json() for e in journal.distribution_errors()],
        "pending_updates": [p.to_json() for p in journal.pending()],
        "alarm": journal.alarm_level(),
        "events": [e.to_json() for e in events],
    }
    path = reports_dir / STATUS_FILE
    atomic_write(path, (json.dumps(doc, indent=1, sort_keys=False) + "\n").encode())
    return path
