"""Login renames: a user deleted and another added with the same identity.

A user's record key on every element is its login_id, so changing a login_id
in the config plans a delete of the old user and an add of a new one, on every
element the user lands on (its phones lose their settings while it happens,
and voicemail goes with the old user). The plan is right, but it reads like
two unrelated changes: this names it for what it is.
"""

from __future__ import annotations

from collections.abc import Iterable

from provgit.plan.identity import USERS, deleted_fields, identities
from provgit.plan.model import ElementPlan


def rename_warnings(elements: Iterable[ElementPlan]) -> tuple[str, ...]:
    """One warning per (old login, new login) pair the plan deletes and re-adds."""
    pairs: dict[tuple[str, str], tuple[list[str], set[tuple[str, str]]]] = {}
    for e in elements:
        ops = e.operations or e.queued
        # A user moving to another element under its own key (or another
        # than the add's) is not renamed here: another user takes its number
        # (a swap across hosts planned for one of them, `--element`).
        moving = {m.key: m.as_key for m in e.moves if m.collection == USERS}
        deleted: dict[tuple[str, str], str] = {}
        for op in ops:
            if op.action == "delete" and op.collection == USERS:
                for ident in identities(deleted_fields(op)):
                    deleted[ident] = op.key
        if not deleted:
            continue
        for op in ops:
            if op.action != "add" or op.collection != USERS:
                continue
            for ident in sorted(identities(op.fields or {})):
                old = deleted.get(ident)
                if old in moving and moving[old] != op.key:
                    continue
                if old is not None and old != op.key:
                    where, same = pairs.setdefault((old, op.key), ([], set()))
                    if e.element not in where:
                        where.append(e.element)
                    same.add(ident)
    return tuple(
        f"users/{old} -> users/{new} look like one user renamed (same "
        f"{', '.join(f'{k} {v}' for k, v in sorted(same))}): renaming a login_id deletes and "
        f"re-creates the user on every element ({', '.join(where)}); its phones are "
        "re-provisioned and what the element keeps for the old user is lost"
        for (old, new), (where, same) in sorted(pairs.items())
    )
