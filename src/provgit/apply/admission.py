"""Admission before the first write: a resource is written whole or not at all.

A resource (a user, say) becomes records on several elements: its MiCollab
record holds the voicemail PIN, its call server records may hold hot-desk
PINs. Resolving secrets one write at a time created the user on the call
servers and then failed on the MiCollab: half provisioned. So before any
element is written, every secret reference that the writes of each resource
need, on ALL its elements, is resolved once. A resource with one that does
not resolve is refused everywhere:

- one distribution error, on the record that needs the reference (preferring
  an element that can be reached), naming the reference and never a value;
- every other record of that resource, on every element: skipped, "depends on"
  that record;
- whatever depends on a refused record (same element, `depends_on`) is
  skipped, and with it the rest of that dependent's resource, transitively.

The engine asks `verdict(element, op)` for each operation as it prepares its
waves; an operation with no verdict goes ahead as before. Values resolved
here are thrown away: the write resolves its secrets again, right before it
goes out (a reference that vanishes in between still fails that one write).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from provgit.plan.model import Operation
from provgit.secret_refs import has_reference, references, unresolvable

Resource = tuple[str, str]  # (kind, key)
Place = tuple[str, str, str]  # (element, collection, key)


@dataclass(frozen=True)
class Verdict:
    status: Literal["failed", "skipped"]
    message: str
    # "secret" for the one record that carries the distribution error.
    error_type: str | None = None


@dataclass
class Admission:
    verdicts: dict[Place, Verdict] = field(default_factory=dict)
    # resource -> why it was refused (for reports and logs)
    refused: dict[Resource, str] = field(default_factory=dict)

    def verdict(self, element: str, op: Operation) -> Verdict | None:
        if not self.verdicts:
            return None
        return self.verdicts.get((element, op.collection, op.key))


def review(
    elements: Sequence[tuple[str, Sequence[Operation]]],
    reachable: Iterable[str] = (),
) -> Admission:
    """The verdicts for the operations about to be applied, per element in
    plan order. `reachable`: elements that can take a write now (the one
    distribution error of a refused resource goes to one of them first)."""
    live = set(reachable)
    verdicts: dict[str, str | None] = {}
    # resource -> (missing references, carrier) in plan order
    missing: dict[Resource, list[str]] = {}
    carrier: dict[Resource, tuple[str, Operation]] = {}
    by_resource: dict[Resource, list[tuple[str, Operation]]] = {}
    for element, ops in elements:
        for op in ops:
            res = (op.kind, op.resource)
            by_resource.setdefault(res, []).append((element, op))
            if op.action == "delete" or not op.fields or not has_reference(op.fields):
                continue
            for secret in references(op.fields):
                described = str(secret.get("ref", ""))
                if described not in verdicts:
                    verdicts[described] = unresolvable(described)
                why = verdicts[described]
                if why is None:
                    continue
                reasons = missing.setdefault(res, [])
                if why not in reasons:
                    reasons.append(why)
                current = carrier.get(res)
                if current is None or (current[0] not in live and element in live):
                    carrier[res] = (element, op)
    admission = Admission()
    if not missing:
        return admission
    for res, reasons in missing.items():
        element, op = carrier[res]
        reason = "; ".join(reasons)
        admission.refused[res] = reason
        admission.verdicts[(element, op.collection, op.key)] = Verdict(
            "failed",
            f"{reason}: {res[0]}/{res[1]} is not written on any of its elements",
            "secret",
        )
        blocker = f"skipped: depends on {op.collection}/{op.key} on {element} ({reason})"
        for el, other in by_resource[res]:
            admission.verdicts.setdefault(
                (el, other.collection, other.key), Verdict("skipped", blocker)
            )
    _skip_dependents(elements, by_resource, admission)
    return admission


def _skip_dependents(
    elements: Sequence[tuple[str, Sequence[Operation]]],
    by_resource: Mapping[Resource, list[tuple[str, Operation]]],
    admission: Admission,
) -> None:
    """Records that need a refused record, and the rest of their resources, until
    nothing more is refused."""
    changed = True
    while changed:
        changed = False
        for element, ops in elements:
            for op in ops:
                if (element, op.collection, op.key) in admission.verdicts:
                    continue
                blocker = next(
                    (d for d in op.depends_on if (element, *d) in admission.verdicts), None
                )
                if blocker is None:
                    continue
                res = (op.kind, op.resource)
                message = f"skipped: depends on {blocker[0]}/{blocker[1]} on {element}"
                admission.refused.setdefault(res, message)
                for el, other in by_resource[res]:
                    admission.verdicts.setdefault(
                        (el, other.collection, other.key), Verdict("skipped", message)
                    )
                changed = True
