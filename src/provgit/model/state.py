"""`DesiredState`: the validated network, indexed by kind and key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the models (pydantic): a status in sync builds none
    from provgit.model.common import Model
    from provgit.model.findings import Pointer
    from provgit.model.network import Element
    from provgit.model.settings import Settings


M = TypeVar("M", bound="Model")


@dataclass(frozen=True)
class DesiredState:
    settings: Settings
    # kind (plural) -> key -> model, in file order
    resources: dict[str, dict[str, Any]] = field(repr=False)
    # (kind, key) -> where the record is written
    origins: dict[tuple[str, str], Pointer] = field(default_factory=dict, repr=False)
    # file path -> bytes, for locating problems found later
    sources: dict[str, bytes] = field(default_factory=dict, repr=False)
    commit: str | None = None
    # Reads other files of the config tree (prompt audio) by relative path.
    root: str = "."
    # kind -> key -> what was salvaged of a record that failed its own checks
    # (`model.build.salvage`): only the rules across records look at these.
    partial: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def of(self, kind: str) -> dict[str, Any]:
        return self.resources.get(kind, {})

    def all_of(self, kind: str) -> dict[str, Any]:
        """Valid and partial records of a kind: every name the config defines."""
        broken = self.partial.get(kind)
        return {**self.of(kind), **broken} if broken else self.of(kind)

    @property
    def elements(self) -> dict[str, Element]:
        return self.resources.get("elements", {})

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.resources.items()}

    def items(self) -> Iterator[tuple[str, str, Any]]:
        for kind, records in self.resources.items():
            for key, model in records.items():
                yield kind, key, model
