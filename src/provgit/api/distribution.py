"""Distribution errors (records an element refused, or another user changed):
list them, and what retry, force and delete mean. Internal to the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from provgit.api.errors import NothingToDo, UsageProblem
from provgit.api.running import execute, existing_journal, open_journal
from provgit.apply import ApplyOptions, ApplyResult, standing
from provgit.apply.progress import NoProgress, Progress
from provgit.journal import DistributionError, Journal, PendingUpdate
from provgit.plan import PlanOptions

if TYPE_CHECKING:
    from provgit.api.config import Config

# Error types that mean "another user changed the record": only these are forced.
CONFLICTS = ("conflict", "not_found")

Ref = tuple[str, str, str]  # element, collection, key


@dataclass(frozen=True)
class ErrorList:
    """The distribution errors asked for, and the pending updates beside them
    (writes kept for an element that is down, locked or refusing the token)."""

    errors: list[DistributionError]
    pending_count: int
    pending: list[PendingUpdate]
    alarm: str | None


@dataclass(frozen=True)
class Reapplied:
    """What a retry or force did. `not_retried`: per element, why the errors on
    it were not retried (a refusal) and which; they are idle again."""

    result: ApplyResult
    chosen: list[DistributionError]
    not_retried: dict[str, tuple[str, list[DistributionError]]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # why some chosen were left out

    @property
    def ids(self) -> dict[Ref, int]:
        return {(e.element, e.collection, e.key): e.id for e in self.chosen}

    @property
    def exit_code(self) -> int:
        return self.result.exit_code()


@dataclass(frozen=True)
class Deleted:
    deleted: int
    left: int
    # The alarm on the count left; None when provgit.yaml cannot be read (then
    # the next run recomputes it) or when there is none.
    alarm: str | None
    settings_read: bool


def _check_element(journal: Journal, element: str) -> None:
    """A mistyped element is a usage error, not "no distribution errors"."""
    known = set(journal.element_statuses())
    known.update(e.element for e in journal.distribution_errors())
    known.update(p.element for p in journal.pending())
    if element not in known:
        listed = ", ".join(sorted(known)) or "none recorded yet"
        raise UsageProblem(f"no element {element} (known: {listed})")


def list_errors(
    config: Config,
    element: str | None = None,
    form: str | None = None,
    error_type: str | None = None,
) -> ErrorList:
    with existing_journal(config.root, config.state_dir) as journal:
        if element is not None:
            _check_element(journal, element)
        return ErrorList(
            journal.distribution_errors(element=element, form=form, error_type=error_type),
            journal.pending_count(),
            journal.pending(element),
            journal.alarm_level(),
        )


def select(config: Config, ids: Sequence[int], all_: bool) -> list[DistributionError]:
    """The errors `ids` name (every one with `all_`); `UsageProblem` for an id
    that names none."""
    with existing_journal(config.root, config.state_dir) as journal:
        if all_ and ids:
            raise UsageProblem("give IDS or --all, not both")
        if not all_ and not ids:
            raise UsageProblem(
                "give the action ids to act on (see `provgit errors list`), or --all"
            )
        if all_:
            return journal.distribution_errors()
        found = journal.distribution_errors(ids=list(ids))
    missing = sorted(set(ids) - {e.id for e in found})
    if missing:
        raise UsageProblem(
            f"no distribution error with id {', '.join(map(str, missing))} "
            "(see `provgit errors list`)"
        )
    return found


def retry_choice(chosen: Sequence[DistributionError]) -> tuple[list[DistributionError], list[str]]:
    """What a retry acts on: not conflicts (another user's change is not
    overwritten by a retry; force is for that). Returns (retried, why-skipped)."""
    skipped = [
        f"{e.id}: {e.element} {e.collection}/{e.key} was changed by another user; "
        f"not overwritten (provgit errors force {e.id} to overwrite it)"
        for e in chosen
        if e.error_type in CONFLICTS
    ]
    return [e for e in chosen if e.error_type not in CONFLICTS], skipped


def force_refusals(chosen: Sequence[DistributionError]) -> list[str]:
    """Why force refuses: it only overwrites conflicts (another user's change)."""
    return [
        f"{e.id}: {e.element} {e.collection}/{e.key} is not a conflict "
        f"({e.error_type}: {e.reason}); force only overwrites another user's change. "
        f"Use `provgit errors retry {e.id}` (after fixing the config if the element "
        "refused it)"
        for e in chosen
        if e.error_type not in CONFLICTS
    ]


async def reapply(
    config: Config,
    chosen: list[DistributionError],
    command: str,
    progress: Progress | None = None,
    skipped: Sequence[str] = (),
) -> Reapplied:
    """Plan the chosen records again from the config and the elements now, and
    apply just them (a conflict is overwritten: the plan is the config's)."""
    if not chosen:
        raise NothingToDo("no distribution error to act on", skipped)
    keys = frozenset((e.element, e.collection, e.key) for e in chosen)
    with open_journal(config.state_dir) as journal:
        journal.set_distribution_error_status([e.id for e in chosen], "retry pending")
    elements = tuple(sorted({e.element for e in chosen}))
    run = await config.plan(PlanOptions(elements=elements))
    options = ApplyOptions(command=command, check_stale=False, only=keys, release=keys, fresh=False)
    with open_journal(config.state_dir) as journal:
        result = await execute(
            run.plan,
            run.state,
            config.root,
            config.state_dir,
            journal,
            options,
            progress or NoProgress(),
        )
    refused = {ep.element: ep.refusal for ep in result.elements if ep.refusal}
    not_retried: dict[str, tuple[str, list[DistributionError]]] = {}
    if result.refusal is not None or refused:
        # Not retried, and the errors go back to idle (a "retry pending" that
        # nothing will ever retry would hide them).
        left = [e for e in chosen if result.refusal is not None or e.element in refused]
        with open_journal(config.state_dir) as journal:
            journal.set_distribution_error_status([e.id for e in left], "idle")
        for e in left:
            why = refused.get(e.element) or result.refusal or ""
            not_retried.setdefault(e.element, (why, []))[1].append(e)
    return Reapplied(result, chosen, not_retried, list(skipped))


def delete(config: Config, chosen: Sequence[DistributionError]) -> Deleted:
    """Delete the chosen errors (the next reconcile tries the records again);
    the alarm follows the count now, not at the next run."""
    settings = config.settings()
    with existing_journal(config.root, config.state_dir) as journal:
        n = journal.delete_distribution_errors([e.id for e in chosen])
        left = journal.distribution_error_count()
        alarm = journal.alarm_level()
        if settings is not None:
            alarm = standing.update_alarm(journal, settings.alarms)
    return Deleted(n, left, alarm, settings is not None)
