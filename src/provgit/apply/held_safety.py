"""The safety last applied to each element, kept in the journal (plan/held.py).

Read when a run starts (its plan is held to the stricter of it and the
config's) and by `provgit plan`; written in the run's last commit for each
element the run admitted: observed, not refused (the run was not refused as
a whole either), its lease kept. An element refused, down, or not in the run
keeps the safety it had, so a loosening reaches it only after a run that
applied the loosened config to it. One meta key per element: replicas of
the watcher sharing the journal each write their own elements'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from provgit.model.settings import Safety
from provgit.plan.held import KEY_PREFIX, AppliedSafety, safety_text

if TYPE_CHECKING:  # `provgit plan` reads the journal through here, applying nothing
    from provgit.apply.result import ApplyResult
    from provgit.apply.work import ElementWork
    from provgit.journal import Journal, JournalReader


def applied_safety(journal: JournalReader) -> dict[str, AppliedSafety]:
    """Per element, the safety its last admitted run was held to."""
    found: dict[str, AppliedSafety] = {}
    for k, v in journal.metas(KEY_PREFIX).items():
        applied = AppliedSafety.loads(v)
        if applied is not None:
            found[k.removeprefix(KEY_PREFIX)] = applied
    return found


def admitted(result: ApplyResult, work: Iterable[ElementWork]) -> list[str]:
    """The elements this run applied its plan to, under the safety in force."""
    if result.refusal is not None:
        return []
    return [
        w.plan.element
        for w in work
        if w.plan.observed
        and w.result.outcome not in ("refused", "unreachable")
        and w.result.state != "lost_lease"
    ]


def remember_safety(
    journal: Journal,
    elements: Iterable[str],
    safety: Safety,
    known: Mapping[str, AppliedSafety],
    commit: str | None,
    run_id: int | None,
) -> None:
    """`safety` as the last applied on `elements` (in the caller's
    transaction); an element already under this very safety keeps its
    record (which names the run that first applied it)."""
    text = safety_text(safety)
    value = AppliedSafety(text, commit, run_id).dumps()
    for name in elements:
        was = known.get(name)
        if was is None or was.text != text:
            journal.set_meta(KEY_PREFIX + name, value)
