"""What makes two user records the same person whatever their key: an email,
a directory number. A login rename (plan/renames.py) and a move that renames
on the way (plan/moves.py) are found by it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provgit.plan.model import Operation

USERS = "users"
Identity = tuple[str, str]


def identities(fields: Mapping[str, Any]) -> set[Identity]:
    """An email (case-folded) and every service's directory number."""
    found: set[Identity] = set()
    email = fields.get("email")
    if isinstance(email, str) and email:
        found.add(("email", email.casefold()))
    services = fields.get("services")
    if isinstance(services, list):
        for s in services:
            if isinstance(s, dict) and s.get("dn"):
                found.add(("DN", str(s["dn"])))
    return found


def deleted_fields(op: Operation) -> dict[str, Any]:
    """The record a delete removes, as its plan shows it."""
    return {k: c.get("before") for k, c in op.changes.items() if isinstance(c, dict)}
