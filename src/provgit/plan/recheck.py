"""Apply re-checks a saved plan against the config it names.

A signed plan cannot be edited, but it can be older than the rules: the
protected list, the prune kinds, the thresholds or a secret reference may have
changed since it was made, and a plan signed by a key that leaked is only as
good as its content. So before anything is applied, every operation is held
to what planning the config now would allow: it must be on an element of the
config, write only records the config puts there (with the secret references
the config uses for that very field), and delete only what planning could
delete (not protected, not excluded, not wanted, provgit's own unless pruning
was asked), within the safety thresholds. A pure function; the CLI composes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from provgit.model.settings import Settings
from provgit.plan.model import ElementPlan, Operation, Plan, canonical
from provgit.plan.moves import unmarked_moves
from provgit.plan.numbers import Taken, numbers_held, spare_allowed
from provgit.plan.safety import check_thresholds, is_protected
from provgit.plan.swap_mark import Swap
from provgit.plan.swaps import rebuilt, unspared
from provgit.projection.project import COLLECTION_KIND, Target
from provgit.records import COLLECTIONS
from provgit.registry import KEYED_APART
from provgit.secrets import is_sensitive

Path = tuple[str | int, ...]


def secret_refs(value: Any, path: Path = ()) -> Iterator[tuple[Path, str | None]]:
    """Every secret in a record, by where it is, with the reference it names."""
    if is_sensitive(value):
        ref = value.get("ref")
        yield path, ref if isinstance(ref, str) else None
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from secret_refs(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from secret_refs(v, (*path, i))


def _where(path: Path) -> str:
    parts = (f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path))
    return "".join(parts)


def _write_problems(name: str, op: Operation, target: Target) -> list[str]:
    record = f"{name}: {op.action} {op.collection}/{op.key}"
    desired = target.records.get(name, {}).get(op.collection, {}).get(op.key)
    if desired is None:
        return [f"{record}: the config does not put this record on {name}"]
    problems = []
    kind, resource = target.resource_of(name, op.collection, op.key)
    if (op.kind, op.resource) != (kind, resource):
        problems.append(
            f"{record}: the plan says it comes from {op.kind} {op.resource!r}, "
            f"the config from {kind} {resource!r}"
        )
    if not isinstance(op.fields, dict):
        return [*problems, f"{record}: the plan has no record to write"]
    planned = dict(secret_refs(op.fields))
    wanted = dict(secret_refs(desired))
    for path in sorted(set(planned) | set(wanted), key=_where):
        if planned.get(path, "") == wanted.get(path, ""):
            continue
        if path in planned and path in wanted:
            why = (
                f"secret reference {planned[path]} is not the one the config uses ({wanted[path]})"
            )
        elif path in planned:
            why = f"secret reference {planned[path]} where the config uses no secret"
        else:
            why = f"no secret reference where the config uses {wanted[path]}"
        problems.append(f"{record} field {_where(path)}: {why}")
    if not problems:
        # A plan of another version of the config (an unmerged branch, a
        # reverted commit) is signed with the same key: it must still write
        # exactly what the config wants now. Secrets are compared by reference
        # above (a rotated value changes only the fingerprint).
        changed = sorted(
            k
            for k in set(op.fields) | set(desired)
            # As JSON both ways: the plan's record has been through a file.
            if canonical(_unfingerprinted(op.fields.get(k)))
            != canonical(_unfingerprinted(desired.get(k)))
        )
        if changed:
            problems.append(
                f"{record}: the config wants other values ({', '.join(changed)}) than the "
                "plan writes; it was made from another version of the config, run "
                "`provgit plan` again"
            )
    return problems


def _unfingerprinted(value: Any) -> Any:
    """`value` with each secret reduced to its reference."""
    if is_sensitive(value):
        return {"ref": value.get("ref")}
    if isinstance(value, dict):
        return {k: _unfingerprinted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unfingerprinted(v) for v in value]
    return value


def _delete_problems(
    name: str, element_type: str, op: Operation, plan: Plan, target: Target, settings: Settings
) -> list[str]:
    record = f"{name}: delete {op.collection}/{op.key}"
    if op.collection not in COLLECTIONS.get(element_type, {}):
        return [f"{record}: a {element_type} element has no collection {op.collection!r}"]
    # The kind and resource the plan claims, and the ones the collection implies:
    # relabelling an operation must not slip it past a rule.
    kinds = {op.kind, COLLECTION_KIND.get(op.collection, op.collection)}
    resources = {op.key, op.resource}
    safety = settings.safety
    if any(is_protected(safety, k, op.collection, r) for k in kinds for r in resources):
        return [f"{record}: protected (safety.protected in provgit.yaml); provgit never deletes it"]
    kind = COLLECTION_KIND.get(op.collection, op.collection)
    # Planning labels a delete by its collection (a remote directory entry by
    # its user's login): another label would dodge a per-kind threshold.
    if op.kind != kind or (op.collection not in KEYED_APART and op.resource != op.key):
        return [
            f"{record}: the plan says it comes from {op.kind} {op.resource!r}; "
            f"a delete of this record belongs to {kind}"
        ]
    if op.key in target.records.get(name, {}).get(op.collection, {}):
        return [f"{record}: the config still has this record"]
    excluded = sorted(f"{k}/{r}" for k in kinds for r in resources if (k, r) in target.excluded)
    if excluded:
        return [
            f"{record}: {excluded[0]} is excluded from sharing; "
            "provgit neither writes nor deletes it"
        ]
    if not (op.managed is True or plan.prune or kinds & set(safety.prune)):
        return [
            f"{record}: provgit did not create this record, the plan was not made with --prune "
            "and safety.prune does not name its kind"
        ]
    return []


def _step_problems(
    ep: ElementPlan, op: Operation, swap: Swap, target: Target, taken: Callable[[], Taken]
) -> list[str]:
    """A number swap's spare step (plan/swaps.py): the record the config
    wants (on `swap.home` for one leaving `ep`'s element) with only its DNs
    replaced by spares that clash with no number in use (`taken`)."""
    record = f"{ep.element}: {op.action} {op.collection}/{op.key}"
    for _, spare in swap.spares:
        if not spare_allowed(spare):
            why = "an emergency number or close to one"
        elif (clash := taken().clash(spare)) is not None:
            why = f"{clash} is in use" if clash == spare else f"it clashes with {clash}, in use"
        else:
            continue
        return [f"{record}: spare DN {spare} of a number swap is not a free number ({why})"]
    if swap.home is not None and target.records.get(swap.home) is None:
        return [f"{record}: the config puts nothing on {swap.home}, where it moves"]
    back = rebuilt(op, unspared(op.fields or {}, swap))
    return _write_problems(swap.home or ep.element, back, target)


def _element_problems(
    ep: ElementPlan,
    element_type: str,
    plan: Plan,
    target: Target,
    settings: Settings,
    taken: Callable[[], Taken],
) -> list[str]:
    problems = []
    swaps = {(s.collection, s.key): s for s in ep.swaps}
    for op in ep.operations:
        swap = swaps.get((op.collection, op.key))
        if swap is not None and op.action == "modify":
            problems += _step_problems(ep, op, swap, target, taken)
        elif op.action in ("add", "modify"):
            problems += _write_problems(ep.element, op, target)
            if op.claim and (op.action != "modify" or not plan.claim):
                problems.append(
                    f"{ep.element}: {op.action} {op.collection}/{op.key} takes ownership of "
                    "a record provgit did not create, but the plan was not made with --claim"
                )
        elif op.action == "delete":
            problems += _delete_problems(ep.element, element_type, op, plan, target, settings)
        else:
            problems.append(
                f"{ep.element}: unknown action {op.action!r} on {op.collection}/{op.key}"
            )
    if ep.refusal is None:
        # Planning would have refused the element past a threshold: so does apply.
        refusal = check_thresholds(
            settings.safety,
            ep.element,
            ep.operations,
            ep.observed_records,
            plan.allow_deletes,
            plan.allow_updates,
        )
        if refusal is not None:
            problems.append(refusal)
    return problems


def _taken(target: Target, more: Callable[[], Iterable[str]] | None) -> Callable[[], Taken]:
    """The numbers in use (plan/numbers.py), found once when first asked."""
    found: list[Taken] = []

    def taken() -> Taken:
        if not found:
            numbers = numbers_held(target.records.values())
            found.append(Taken([*numbers, *(more() if more is not None else ())]))
        return found[0]

    return taken


def recheck(
    plan: Plan,
    target: Target,
    settings: Settings,
    element_types: Mapping[str, str],
    more_numbers: Callable[[], Iterable[str]] | None = None,
) -> list[str]:
    """What in `plan` planning the config (`target`, `settings`) would refuse;
    empty when it may be applied. `more_numbers`: the numbers the elements
    were last seen to hold (a swap's spare clashes with none of them either)."""
    taken = _taken(target, more_numbers)
    if plan.mode != "plan":
        return ["this is the output of `provgit diff`, not a plan for the elements"]
    gone = [e.element for e in plan.elements if e.element not in element_types]
    if gone:
        return [
            f"the plan names element(s) the config no longer has: {', '.join(gone)}; "
            "run `provgit plan` again"
        ]
    problems = []
    for ep in plan.elements:
        element_type = element_types[ep.element]
        if ep.element_type != element_type:
            problems.append(
                f"{ep.element}: the plan has it as a {ep.element_type} element, "
                f"the config as a {element_type}"
            )
            continue
        if ep.element in target.read_only and (ep.operations or ep.queued):
            problems.append(
                f"{ep.element}: the plan writes to it, but the config marks it read_only "
                "(observed, never written); run `provgit plan` again"
            )
            continue
        problems += _element_problems(ep, element_type, plan, target, settings, taken)
    # Make before break: every move its own writes make is held back.
    problems += unmarked_moves(plan.elements)
    return problems
