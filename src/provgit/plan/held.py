"""A commit cannot loosen the safety that guards its own deletes.

`safety:` is read from the config being applied, so one commit that raises
`max_deletes`, drops a record from `protected` or adds a kind to `prune`
would switch the guard off for the deletes it makes itself. The safety in
force on an element is therefore the strictest of three: the one the last
run that applied the element was held to (kept in the journal per element, see
apply/held_safety.py), the one the network's latest admitted run applied, and
the config's. Per limit the lower count and
percent (an element is refused when either set of limits trips: the same
thing), `protected` the union of both lists, `prune` the kinds both name.
A loosening takes effect once a run has applied it: commit it alone first.
A tightening is the config's own rule, in force at once. Pure functions.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import orjson
import pydantic

from provgit.model.settings import ElementSafety, Safety, Threshold
from provgit.plan.model import ElementPlan, Operation, Plan
from provgit.plan.safety import check_thresholds, is_protected
from provgit.projection.project import COLLECTION_KIND

# One journal meta key per element: replicas of the watcher each write their own.
KEY_PREFIX = "applied_safety:"
# Names listed in one refusal at most (the rest are counted).
SHOWN = 3


def _threshold(t: Threshold | None) -> dict[str, float | None] | None:
    return None if t is None else {"count": t.count, "percent": t.percent}


def _entry(e: ElementSafety) -> dict[str, object]:
    return {"max_deletes": _threshold(e.max_deletes), "max_updates": _threshold(e.max_updates)}


def safety_text(safety: Safety) -> str:
    """`safety` as JSON, made by hand: pydantic's serializer (and validator)
    would be built for it on every run (a no-op reconcile never builds them)."""
    plain = {
        "max_deletes": _threshold(safety.max_deletes),
        "max_updates": _threshold(safety.max_updates),
        "prune": list(safety.prune),
        "protected": list(safety.protected),
        "elements": {k: _entry(v) for k, v in safety.elements.items()},
        "kinds": {k: _entry(v) for k, v in safety.kinds.items()},
    }
    return orjson.dumps(plain, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True)
class AppliedSafety:
    """The safety a run last applied an element under (as `safety_text`
    wrote it: compared as text, read only when it differs), and which run."""

    text: str
    commit: str | None = None
    run: int | None = None

    @classmethod
    def of(cls, safety: Safety, commit: str | None, run: int | None) -> AppliedSafety:
        return cls(safety_text(safety), commit, run)

    @functools.cached_property
    def safety(self) -> Safety | None:
        """None for a value this provgit cannot read (then the config's alone)."""
        try:
            return Safety.model_validate_json(self.text)
        except pydantic.ValidationError:
            return None

    def where(self) -> str:
        at = [f"commit {self.commit[:12]}"] if self.commit else []
        if self.run is not None:
            at.append(f"run {self.run}")
        return "the last applied provgit.yaml" + (f" ({', '.join(at)})" if at else "")

    def dumps(self) -> str:
        return orjson.dumps({"safety": self.text, "commit": self.commit, "run": self.run}).decode()

    @classmethod
    def loads(cls, value: str) -> AppliedSafety | None:
        try:
            d = orjson.loads(value)
            text, commit, run = d["safety"], d.get("commit"), d.get("run")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return None
        if not isinstance(text, str):
            return None
        return cls(
            text,
            commit if isinstance(commit, str) else None,
            run if isinstance(run, int) and not isinstance(run, bool) else None,
        )


def _names(found: list[str]) -> str:
    more = len(found) - SHOWN
    return ", ".join(found[:SHOWN]) + (f" and {more} more" if more > 0 else "")


def _protected(safety: Safety, op: Operation) -> bool:
    # As apply's re-check: under the label the plan gives and the one its collection implies.
    kinds = {op.kind, COLLECTION_KIND.get(op.collection, op.collection)}
    keys = {op.key, op.resource}
    return any(is_protected(safety, k, op.collection, r) for k in kinds for r in keys)


def held_refusal(ep: ElementPlan, plan: Plan, old: Safety, applied: AppliedSafety) -> str | None:
    """Why `ep` is refused under the safety last applied (`old`, read from
    `applied`) though the config's own lets it through; None when it passes
    that one too."""
    deletes = [op for op in ep.operations if op.action == "delete"]
    problems = []
    guarded = sorted({f"{op.kind}/{op.resource}" for op in deletes if _protected(old, op)})
    if guarded:
        verb = "is" if len(guarded) == 1 else "are"
        problems.append(
            f"{_names(guarded)} {verb} protected by {applied.where()}; this config removes "
            "the protection"
        )
    unpruned = sorted(
        {op.kind for op in deletes if op.managed is not True and op.kind not in old.prune}
    )
    if unpruned and not plan.prune:
        kinds = ", ".join(unpruned)
        problems.append(
            f"deletes of {kinds} records provgit did not create: safety.prune names {kinds} "
            f"in this config, not in {applied.where()}; pass --prune to allow"
        )
    tripped = check_thresholds(
        old, ep.element, ep.operations, ep.observed_records, plan.allow_deletes, plan.allow_updates
    )
    if tripped is not None:
        limits = tripped.removeprefix(f"refused for {ep.element}: ")
        problems.append(f"by the limits of {applied.where()}: {limits}")
    if not problems:
        return None
    return (
        f"refused for {ep.element}: "
        + "; ".join(problems)
        + ". A loosening of the safety takes effect once a run has applied it: apply "
        "that change alone first, then the rest"
    )


def _threshold_looser(name: str, old: Threshold | None, new: Threshold | None) -> Iterator[str]:
    if old is None:
        return
    for part in ("count", "percent"):
        was, now = getattr(old, part), getattr(new, part) if new is not None else None
        if was is not None and (now is None or now > was):
            yield f"{name}.{part} {was:g} -> {'unset' if now is None else f'{now:g}'}"


def _entries_looser(
    name: str, old: Mapping[str, ElementSafety], new: Mapping[str, ElementSafety]
) -> Iterator[str]:
    for key, was in sorted(old.items()):
        now = new.get(key)
        for what in ("max_deletes", "max_updates"):
            after = getattr(now, what) if now is not None else None
            yield from _threshold_looser(f"{name}.{key}.{what}", getattr(was, what), after)


def loosenings(old: Safety, new: Safety) -> list[str]:
    """What `new` allows that `old` did not, one phrase each (for the plan's note)."""
    found = [
        *_threshold_looser("max_deletes", old.max_deletes, new.max_deletes),
        *_threshold_looser("max_updates", old.max_updates, new.max_updates),
        *_entries_looser("kinds", old.kinds, new.kinds),
        *_entries_looser("elements", old.elements, new.elements),
    ]
    found += [f"protected no longer lists {p}" for p in old.protected if p not in new.protected]
    found += [f"prune names {k}" for k in new.prune if k not in old.prune]
    return found


def network_latest(applied: Mapping[str, AppliedSafety]) -> AppliedSafety | None:
    """The safety the network's latest admitted run applied (by run id; one
    without a run id counts as the oldest)."""
    return max(applied.values(), key=lambda a: -1 if a.run is None else a.run, default=None)


def hold(plan: Plan, applied: Mapping[str, AppliedSafety], new: Safety, note: bool = True) -> Plan:
    """`plan` with each element the last applied safety refuses marked
    refused (saying why), and (`note`) a warning naming what this config
    loosens where the last applied safety is in force over it."""
    if plan.mode != "plan" or not applied:
        return plan
    elements: list[ElementPlan] = []
    loosened: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    now = safety_text(new)
    latest = network_latest(applied)
    for ep in plan.elements:
        # Held to its own last applied safety and to the network's latest: a
        # name with none of its own (new, renamed in this very commit) or one
        # retired long ago under looser rules is no way around the safety.
        own = applied.get(ep.element)
        helds = [w for w in (own, latest) if w is not None]
        if len(helds) == 2 and helds[0].text == helds[1].text:
            helds = helds[:1]
        why = None
        for was in helds:
            old = None if was.text == now else was.safety
            if old is None or old == new:
                continue
            what = tuple(loosenings(old, new))
            if what:
                loosened.setdefault((was.where(), what), []).append(ep.element)
            if why is None and ep.refusal is None and ep.operations:
                why = held_refusal(ep, plan, old, was)
        elements.append(ep if why is None else dataclasses.replace(ep, refusal=why))
    notes = [
        f"safety: this config loosens {where} on {_names(names)} ({'; '.join(what)}): "
        "the stricter of the two is in force until a run has applied this config"
        for (where, what), names in loosened.items()
    ]
    notes = [n for n in notes if note and n not in plan.warnings]
    if not notes and all(a is b for a, b in zip(elements, plan.elements, strict=True)):
        return plan
    held = dataclasses.replace(plan, elements=tuple(elements), warnings=(*plan.warnings, *notes))
    if "errors" in plan.__dict__:
        # Derived from the operations, which did not change (a large plan's are costly).
        object.__setattr__(held, "errors", plan.errors)
    return held
