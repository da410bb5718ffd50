"""Errors of resources in a plan: what apply would refuse to write at all.

A new or changed resource whose secret reference did not resolve where the
plan was made (its fingerprint is "unresolved") cannot be written whole here:
apply's admission (apply/admission.py) would refuse it on every element. The
plan says so as an error of that resource, naming the reference, rather than
as a warning about the reference. Derived from the operations alone, so a
saved plan shows the same errors when it is read back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provgit.secret_refs import has_reference, missing, references
from provgit.secrets import SENSITIVE, UNRESOLVED

if TYPE_CHECKING:
    from provgit.plan.model import ElementPlan


@dataclass(frozen=True)
class ResourceError:
    kind: str
    resource: str
    references: tuple[str, ...]  # as "env:NAME" / "file:/path", never a value
    elements: tuple[str, ...]  # every element the resource has operations on

    @property
    def message(self) -> str:
        return "; ".join(missing(r) for r in self.references)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "resource": self.resource,
            "references": list(self.references),
            "message": self.message,
            "elements": list(self.elements),
        }


def resource_errors(elements: Iterable[ElementPlan]) -> tuple[ResourceError, ...]:
    refs: dict[tuple[str, str], list[str]] = {}
    where: dict[tuple[str, str], list[str]] = {}
    for e in elements:
        for op in e.operations:
            res = (op.kind, op.resource)
            places = where.setdefault(res, [])
            if e.element not in places:
                places.append(e.element)
            if op.action == "delete" or not op.fields or not has_reference(op.fields):
                continue
            for secret in references(op.fields):
                if secret[SENSITIVE] != UNRESOLVED:
                    continue
                found = refs.setdefault(res, [])
                described = str(secret.get("ref", ""))
                if described not in found:
                    found.append(described)
    return tuple(
        ResourceError(kind, key, tuple(found), tuple(where[(kind, key)]))
        for (kind, key), found in refs.items()
    )


def secret_warnings(unresolved: Iterable[str], errors: Iterable[ResourceError]) -> tuple[str, ...]:
    """Warnings for references that did not resolve and are not already the
    error of a resource (those of unchanged records only)."""
    in_error = {r for e in errors for r in e.references}
    return tuple(
        f"secret {ref} cannot be resolved here: records using it are compared without it"
        for ref in unresolved
        if ref not in in_error
    )
