"""Each embedded element has a file of its own, apart from provgit's files;
every element has cache files of its own.

`connection.path` is relative to the state directory, which also holds the
journal, the signing key, caches and memos: an element's store opened on one
of them writes element tables into it (or fails on it). Two elements on one
file are one element: a write to either shows on both, and each reports the
other's records as its own. Symlinks are followed when drivers start
(api/network.py); here the text of the paths is compared.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from provgit.model.findings import Finding, Pointer
from provgit.model.network import DEFAULT_DRIVER
from provgit.model.state import DesiredState

# What provgit keeps at the top of a state directory (see journal, secrets,
# cache, memo, observe, locks, reports, watch --repo, import).
_OWN = {"journal.sqlite", "secret.key", "cache", "memo", "observed", "locks", "status"}
_OWN |= {"repo.git", "import"}
# The observation cache keeps `<element>.marshal` and beside it
# `<element>.<side>.marshal` (observe/cache.py): element `x.writes`'s file
# would be element x's landed writes.
_CACHE_SIDES = ("writes", "revision", "fullread", "missed", "down")


def check_element_files(state: DesiredState) -> list[Finding]:
    out = _cache_twins(state)
    owners: dict[PurePosixPath, str] = {}
    given: list[tuple[str, PurePosixPath]] = []
    for name, element in state.elements.items():
        if element.driver != DEFAULT_DRIVER:
            continue
        path = element.connection.path
        if path is None:
            owners.setdefault(PurePosixPath("elements", f"{name}.sqlite"), name)
            continue
        if element.connection.allow_outside_state_dir and PurePosixPath(path).is_absolute():
            given.append((name, PurePosixPath(path)))
            continue
        rel = PurePosixPath(path)  # PurePosixPath drops "." parts and doubled slashes
        first = rel.parts[0] if rel.parts else ""
        if first in _OWN or first.startswith(("journal.sqlite", ".")):
            out.append(
                Finding(
                    _at(state, name),
                    f"connection.path {path!r} is among provgit's own files in the state "
                    f"directory ({first}): the element's store would be written into it",
                    kind="elements",
                    key=name,
                    hint=f"give the element a file of its own, e.g. path: elements/{name}.sqlite",
                )
            )
            continue
        given.append((name, rel))
    for name, rel in given:
        other = owners.setdefault(rel, name)
        if other != name:
            out.append(
                Finding(
                    _at(state, name),
                    f"connection.path {str(rel)!r} is element {other}'s file: the two would "
                    "be one element, each reporting the other's records as its own",
                    kind="elements",
                    key=name,
                    hint=f"give the element a file of its own, e.g. path: elements/{name}.sqlite",
                )
            )
    return out


def _cache_twins(state: DesiredState) -> list[Finding]:
    """Elements named `x.writes` (`.revision`, ...) beside an element `x`."""
    out: list[Finding] = []
    for name in state.elements:
        base, _, side = name.rpartition(".")
        if side in _CACHE_SIDES and base in state.elements:
            origin = state.origins.get(("elements", name), Pointer("", ()))
            out.append(
                Finding(
                    Pointer(origin.file, (*origin.path, "name")),
                    f"element name {name!r} is that of a file provgit keeps beside element "
                    f"{base!r}'s (its cached {side}): each would overwrite the other",
                    kind="elements",
                    key=name,
                    hint=f"rename the element, e.g. {base}-{side}",
                )
            )
    return out


def _at(state: DesiredState, name: str) -> Pointer:
    origin = state.origins.get(("elements", name), Pointer("", ()))
    return Pointer(origin.file, (*origin.path, "connection", "path"))
