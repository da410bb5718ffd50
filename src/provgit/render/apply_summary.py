"""Which resources a run changed or could not change, named, from an ApplyResult.

Counts alone ("12 applied, 1 failed") leave an admin asking which; these lines
name them, bounded: `applied: users/jdoe on mivb1, micollab1; cos/7 on cs1 and
4 more`. The CLI prints them after a reconcile/apply and the watcher logs them
with each run's result.
"""

from __future__ import annotations

from provgit.apply.result import ApplyResult

# What each line is called, per operation status, in the order shown.
LABELS = (
    ("ok", "applied"),
    ("failed", "failed"),
    ("pending", "pending"),
    ("skipped", "skipped"),
    ("held", "held"),
)
MAX_RESOURCES = 8  # per line
MAX_ELEMENTS = 4  # per resource


# The status a resource is named under on an element, of all its records'
# there: the worst (a user whose phone record landed and whose directory entry
# failed is not "applied" there; nor one a number swap left on a spare number).
_WORST = {"failed": 0, "pending": 1, "held": 2, "skipped": 3, "ok": 4}


def by_status(result: ApplyResult) -> dict[str, dict[str, list[str]]]:
    """status -> "kind/resource" -> the elements it had that status on (its
    worst there: each resource is named once per element), in run order."""
    out: dict[str, dict[str, list[str]]] = {}
    for e in result.elements:
        here: dict[str, str] = {}
        for op in e.operations:
            name = f"{op.kind}/{op.resource}"
            was = here.get(name)
            if was is None or (was != op.status and _WORST[op.status] < _WORST[was]):
                here[name] = op.status
        for name, status in here.items():
            out.setdefault(status, {}).setdefault(name, []).append(e.element)
    return out


def _resource(name: str, elements: list[str]) -> str:
    shown = ", ".join(elements[:MAX_ELEMENTS])
    if len(elements) > MAX_ELEMENTS:
        shown += f" +{len(elements) - MAX_ELEMENTS}"
    return f"{name} on {shown}"


def named(result: ApplyResult, limit: int = MAX_RESOURCES) -> list[tuple[str, str]]:
    """(label, resources named) for each status that occurred, in LABELS order."""
    grouped = by_status(result)
    out: list[tuple[str, str]] = []
    for status, label in LABELS:
        resources = grouped.get(status)
        if not resources:
            continue
        names = list(resources)
        text = "; ".join(_resource(n, resources[n]) for n in names[:limit])
        if len(names) > limit:
            text += f"; and {len(names) - limit} more"
        out.append((label, text))
    return out


def lines(result: ApplyResult, limit: int = MAX_RESOURCES) -> list[str]:
    """One line per status that occurred: `applied: users/jdoe on cs1, mcl; …`."""
    return [f"{label}: {text}" for label, text in named(result, limit)]


def fields(result: ApplyResult, limit: int = MAX_RESOURCES) -> dict[str, str]:
    """The same, keyed by label, for a structured log line."""
    return dict(named(result, limit))
