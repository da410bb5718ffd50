"""Safety: thresholds on deletes and updates per element, protected records."""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Sequence

from provgit.model.settings import Safety, Threshold
from provgit.plan.model import Operation

# Below this many records on an element a percentage says little (1 of 3 is 33 %).
PERCENT_MIN_BASE = 20


def is_protected(safety: Safety, kind: str, collection: str, key: str) -> bool:
    return any(
        _matches(f"{kind}/{key}", pat) or _matches(f"{collection}/{key}", pat)
        for pat in safety.protected
    )


def _matches(name: str, pattern: str) -> bool:
    # Login ids are one ignoring case (MiCollab compares them so): `users/Reception`
    # protects the user `reception`, which it would otherwise silently not.
    if name.startswith("users/") and pattern.startswith("users/"):
        return fnmatch.fnmatchcase(name.casefold(), pattern.casefold())
    return fnmatch.fnmatchcase(name, pattern)


def _limit(safety: Safety, element: str, kind: str | None, what: str) -> Threshold:
    chosen: Threshold = getattr(safety, what)
    if kind is not None and kind in safety.kinds:
        chosen = getattr(safety.kinds[kind], what) or chosen
    if element in safety.elements:
        chosen = getattr(safety.elements[element], what) or chosen
    return chosen


def _trips(t: Threshold, n: int, base: int) -> str | None:
    if t.count is not None and n > t.count:
        return f"more than {t.count}"
    if t.percent is not None and base >= PERCENT_MIN_BASE and n * 100.0 / base > t.percent:
        return f"{n * 100.0 / base:.1f} % of {base} records, over {t.percent:g} %"
    return None


def check_thresholds(
    safety: Safety,
    element: str,
    ops: Sequence[Operation],
    observed_count: int,
    allow_deletes: bool,
    allow_updates: bool,
) -> str | None:
    """A refusal message naming the element, the counts and the overriding flag; or None."""
    checks = [("delete", "max_deletes", allow_deletes, "--allow-mass-delete")]
    checks.append(("modify", "max_updates", allow_updates, "--allow-mass-update"))
    problems = []
    for action, what, allowed, flag in checks:
        if allowed:
            continue
        mine = [o for o in ops if o.action == action]
        if not mine:
            continue
        verb = "deletes" if action == "delete" else "updates"
        why = _trips(_limit(safety, element, None, what), len(mine), observed_count)
        if why:
            problems.append(f"{len(mine)} {verb} ({why}); pass {flag} to allow")
            continue
        by_kind = Counter(o.kind for o in mine)
        for kind, n in sorted(by_kind.items()):
            if kind in safety.kinds:
                why = _trips(_limit(safety, element, kind, what), n, observed_count)
                if why:
                    problems.append(f"{n} {kind} {verb} ({why}); pass {flag} to allow")
    if not problems:
        return None
    return f"refused for {element}: " + "; ".join(problems)
