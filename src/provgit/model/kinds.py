"""The resource kinds' models: YAML key, model, and how a resource's key is formed.

Everything else about a kind (its collections, order, wording, import layout)
is its entry in `provgit.registry`. Adding a resource kind means a model bound
here, a projection in `projection/` and a registry entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from provgit.model.common import Model
from provgit.model.ivr import MediaServer, Prompt, Subroutine, Workflow
from provgit.model.network import Element
from provgit.model.telephony import (
    ClassOfService,
    CorGroup,
    Department,
    Location,
    Role,
    Template,
    User,
)

# Aliases users reach for in `provgit show KIND/KEY` come from the registry.
from provgit.registry import KIND_ALIASES as KIND_ALIASES


@dataclass(frozen=True)
class Kind:
    plural: str  # the YAML key and the kind's name in messages, plans and `show`
    singular: str  # human name
    model: type[Model]
    key_field: str
    key: Callable[[Any], str]
    # Keys compared case-insensitively for uniqueness (SDS role names).
    fold_case: bool = False

    def adapter(self) -> TypeAdapter[list[Any]]:
        return _adapter(self.model)


_ADAPTERS: dict[type[Model], TypeAdapter[list[Any]]] = {}


def _adapter(model: type[Model]) -> TypeAdapter[list[Any]]:
    if model not in _ADAPTERS:
        _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    return _ADAPTERS[model]


def _attr(name: str) -> Callable[[Any], str]:
    return lambda m: str(getattr(m, name))


KINDS: dict[str, Kind] = {
    k.plural: k
    for k in [
        Kind("elements", "element", Element, "name", _attr("name")),
        Kind("classes_of_service", "class of service", ClassOfService, "number", _attr("number")),
        Kind("cor_groups", "COR group", CorGroup, "number", _attr("number")),
        Kind("departments", "department", Department, "name", _attr("name")),
        Kind("locations", "location", Location, "name", _attr("name")),
        Kind("templates", "template", Template, "name", _attr("name")),
        Kind("roles", "role", Role, "name", _attr("name"), fold_case=True),
        Kind("users", "user", User, "login_id", _attr("login_id")),
        Kind("ivr_media_servers", "IVR media server", MediaServer, "name", _attr("name")),
        Kind("prompts", "prompt", Prompt, "name", lambda p: f"{p.name}:{p.language}"),
        Kind("subroutines", "subroutine", Subroutine, "name", _attr("name")),
        Kind("workflows", "workflow", Workflow, "name", _attr("name")),
    ]
}


def bind(kind: Kind) -> None:
    """Give a kind its model (the kind's registry entry says the rest).

    Refuses a kind already bound: a model is never silently replaced."""
    if kind.plural in KINDS:
        raise ValueError(f"kind {kind.plural!r} already has a model")
    KINDS[kind.plural] = kind


def unbind(plural: str) -> None:
    """Drop a kind bound with `bind` (KeyError if it is not)."""
    del KINDS[plural]


def resolve_kind(name: str) -> Kind | None:
    name = name.strip().lower().replace("-", "_")
    return KINDS.get(KIND_ALIASES.get(name, name))
