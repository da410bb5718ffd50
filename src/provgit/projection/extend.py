"""Adding a resource kind at run time: its registry entry, model and projection
in one step (a plugin, or a test proving the stages need nothing else).

A built-in kind is the same three things written in place: an entry in
`provgit.registry.BUILTIN`, a `Kind` in `model/kinds.py`, and its projection
in `PROJECTIONS`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from provgit import registry
from provgit.model import kinds
from provgit.projection.context import Projection
from provgit.projection.project import PROJECTIONS


def register_kind(entry: registry.KindEntry, model: kinds.Kind, projection: Projection) -> None:
    """Register a kind everywhere at once, or nowhere (ValueError says why)."""
    if model.plural != entry.plural:
        raise ValueError(
            f"the model is for kind {model.plural!r} but the registry entry for "
            f"{entry.plural!r}: give both the same plural"
        )
    if entry.plural in PROJECTIONS:
        raise ValueError(f"kind {entry.plural!r} already has a projection")
    registry.register(entry)
    try:
        kinds.bind(model)
    except ValueError:
        registry.unregister(entry.plural)
        raise
    PROJECTIONS[entry.plural] = projection


def unregister_kind(plural: str) -> None:
    """Remove a kind added with `register_kind`."""
    PROJECTIONS.pop(plural, None)
    kinds.unbind(plural)
    registry.unregister(plural)


@contextmanager
def registered_kind(
    entry: registry.KindEntry, model: kinds.Kind, projection: Projection
) -> Iterator[registry.KindEntry]:
    """The kind exists for the duration of the `with` block."""
    register_kind(entry, model, projection)
    try:
        yield entry
    finally:
        unregister_kind(entry.plural)
