"""The resource kinds: YAML key, model, and how a record's key is formed.

Adding a resource kind means a model here and a projection in `target`.
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

# Aliases users reach for in `provgit show KIND/KEY`.
KIND_ALIASES = {
    "element": "elements",
    "cos": "classes_of_service",
    "class_of_service": "classes_of_service",
    "cor": "cor_groups",
    "cor_group": "cor_groups",
    "department": "departments",
    "location": "locations",
    "template": "templates",
    "role": "roles",
    "user": "users",
    "media_server": "ivr_media_servers",
    "media_servers": "ivr_media_servers",
    "ivr_media_server": "ivr_media_servers",
    "prompt": "prompts",
    "subroutine": "subroutines",
    "workflow": "workflows",
}


def resolve_kind(name: str) -> Kind | None:
    name = name.strip().lower().replace("-", "_")
    return KINDS.get(KIND_ALIASES.get(name, name))
