"""What every projection shares: the context it reads the config through, and
the one callback it hands each record to."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provgit.projection.topology import Topology
from provgit.records import MANAGED_BY, MANAGED_BY_VALUE, Fields
from provgit.secrets import Fingerprinter

if TYPE_CHECKING:  # the models (pydantic): a status in sync builds none
    from provgit.model.common import CorSet, CosSet
    from provgit.model.state import DesiredState
    from provgit.model.telephony import Role, Template

RecordRef = tuple[str, str]  # (collection, key) on the same element

# Projections call this for every record instead of building objects: a large
# network projects hundreds of thousands of records.
Emit = Callable[[str, str, str, Fields, tuple[RecordRef, ...]], None]
NO_DEPS: tuple[RecordRef, ...] = ()


@dataclass(frozen=True)
class PhoneDefaults:
    """What a template gives each phone of a user, computed once per template."""

    labels: tuple[str, ...]
    device_types: tuple[str, ...]
    cos: dict[str, str]
    cor: dict[str, int]
    deps: tuple[RecordRef, ...]


class Context:
    """The config as projections read it, with what they compute once per run."""

    def __init__(
        self,
        state: DesiredState,
        fingerprints: Fingerprinter,
        read_other: Callable[[str], bytes | None],
    ) -> None:
        self.state = state
        self.topo = Topology.of(state.elements)
        self.fp = fingerprints
        self.read_other = read_other
        self.scopes = {k: s.scope for k, s in state.settings.sharing.items() if s.scope}
        self.templates: dict[str, Template] = state.of("templates")
        self.roles: dict[str, Role] = state.of("roles")
        self.roles_folded = {k.casefold(): v for k, v in self.roles.items()}
        self._audio: dict[str, tuple[str, int] | None] = {}
        self._template_elements: dict[str | None, list[str]] = {}
        self._phone_defaults: dict[str | None, PhoneDefaults] = {}
        self._cos: dict[
            tuple[int, int | None, int | None], tuple[dict[str, str], tuple[RecordRef, ...]]
        ] = {}
        self._cor: dict[
            tuple[int, int | None, int | None], tuple[dict[str, int], tuple[RecordRef, ...]]
        ] = {}

    def scope(self, kind: str, default: str) -> str:
        return self.scopes.get(kind, default)

    def audio(self, path: str) -> tuple[str, int] | None:
        if path not in self._audio:
            data = self.read_other(path)
            self._audio[path] = (
                (hashlib.sha256(data).hexdigest(), len(data)) if data is not None else None
            )
        return self._audio[path]

    def phone_defaults(self, template_name: str | None) -> PhoneDefaults:
        found = self._phone_defaults.get(template_name)
        if found is None:
            t = self.templates.get(template_name) if template_name else None
            cos, cos_deps = _cos_fields(t.cos if t else None)
            cor, cor_deps = _cor_fields(t.cor if t else None)
            found = PhoneDefaults(
                tuple(p.label for p in t.phones) if t else (),
                tuple(p.device_type for p in t.phones) if t else (),
                cos,
                cor,
                cos_deps + cor_deps,
            )
            self._phone_defaults[template_name] = found
        return found

    def cos_fields(self, cos: CosSet) -> tuple[dict[str, str], tuple[RecordRef, ...]]:
        k = (cos.day, cos.night1, cos.night2)
        if k not in self._cos:
            self._cos[k] = _cos_fields(cos)
        return self._cos[k]

    def cor_fields(self, cor: CorSet) -> tuple[dict[str, int], tuple[RecordRef, ...]]:
        k = (cor.day, cor.night1, cor.night2)
        if k not in self._cor:
            self._cor[k] = _cor_fields(cor)
        return self._cor[k]

    def template_elements(self, admin_group: str | None) -> list[str]:
        if admin_group not in self._template_elements:
            scope = self.scope("templates", "admin_group")
            topo = self.topo
            if scope == "none":
                servers: list[str] = []
            elif scope == "admin_group" and admin_group is not None:
                servers = topo.admin_groups.get(admin_group, [])
            else:
                servers = topo.call_servers
            self._template_elements[admin_group] = topo.micollab + servers
        return self._template_elements[admin_group]


# A kind's projection: one resource (its key and model) -> records, through `emit`.
Projection = Callable[[Context, Emit, str, Any], None]


def rec(**fields: Any) -> Fields:
    """A record's fields, marked as written by provgit."""
    fields[MANAGED_BY] = MANAGED_BY_VALUE
    return fields


def _cos_fields(cos: CosSet | None) -> tuple[dict[str, str], tuple[RecordRef, ...]]:
    if cos is None:
        return {}, ()
    n = cos.numbers()
    fields = {
        "cos_day": str(n["day"]),
        "cos_night1": str(n["night1"]),
        "cos_night2": str(n["night2"]),
    }
    return fields, tuple(dict.fromkeys(("cos", v) for v in fields.values()))


def _cor_fields(cor: CorSet | None) -> tuple[dict[str, int], tuple[RecordRef, ...]]:
    if cor is None:
        return {}, ()
    n = cor.numbers()
    fields = {"cor_day": n["day"], "cor_night1": n["night1"], "cor_night2": n["night2"]}
    return fields, tuple(dict.fromkeys(("cor_groups", str(v)) for v in fields.values()))
