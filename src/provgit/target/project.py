"""Resources -> records per element, following the SDS sharing scopes.

Defaults, as SDS shares them:
- classes of service and COR groups: the call servers of every cluster;
- departments and locations: MiCollab and every call server;
- templates: MiCollab plus the call servers of the template's admin group
  (every call server when it names none); roles follow their template;
- users: a user record on MiCollab; the phone record on the hosting call
  server and its resilient partner; a remote directory entry per DN on the
  other call servers of the host's cluster;
- IVR media servers, prompts, subroutines, workflows: every IVR server.

`settings.sharing[kind].scope` overrides a kind's scope; `exclude` lists keys
provgit does not share at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from provgit.model.ivr import MediaServer, Prompt, Step, Subroutine, Workflow
from provgit.model.state import DesiredState
from provgit.model.telephony import (
    ClassOfService,
    CorGroup,
    Department,
    Location,
    Role,
    Template,
    User,
)
from provgit.records import MANAGED_BY, MANAGED_BY_VALUE, Fields, Records
from provgit.secrets import Fingerprinter
from provgit.target.topology import Topology

RecordRef = tuple[str, str]  # (collection, key) on the same element


@dataclass(frozen=True)
class Landing:
    """One record a resource becomes on one element."""

    element: str
    collection: str
    key: str
    fields: Fields
    depends_on: tuple[RecordRef, ...] = ()


@dataclass
class Target:
    records: dict[str, Records]
    # element -> (collection, key) -> records on the same element it needs first
    depends: dict[str, dict[RecordRef, tuple[RecordRef, ...]]]
    # element -> (collection, key) -> (kind, resource key) it came from
    origin: dict[str, dict[RecordRef, tuple[str, str]]]
    unresolved_secrets: list[str] = field(default_factory=list)
    # (kind, key) excluded from sharing: provgit neither writes nor deletes them.
    excluded: set[tuple[str, str]] = field(default_factory=set)

    def resource_of(self, element: str, collection: str, key: str) -> tuple[str, str]:
        """The (kind, key) a record comes from."""
        found = self.origin.get(element, {}).get((collection, key))
        return found or (COLLECTION_KIND.get(collection, collection), key)


# Record collection -> resource kind, for collections that map one to one.
COLLECTION_KIND = {
    "cos": "classes_of_service",
    "cor_groups": "cor_groups",
    "departments": "departments",
    "locations": "locations",
    "templates": "templates",
    "roles": "roles",
    "users": "users",
    "remote_directory": "users",
    "media_servers": "ivr_media_servers",
    "prompts": "prompts",
    "subroutines": "subroutines",
    "workflows": "workflows",
}


class _Context:
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

    def scope(self, kind: str, default: str) -> str:
        return self.scopes.get(kind, default)

    def audio(self, path: str) -> tuple[str, int] | None:
        if path not in self._audio:
            data = self.read_other(path)
            self._audio[path] = (
                (hashlib.sha256(data).hexdigest(), len(data)) if data is not None else None
            )
        return self._audio[path]

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


def _rec(**fields: Any) -> Fields:
    fields[MANAGED_BY] = MANAGED_BY_VALUE
    return fields


def _cos(ctx: _Context, key: str, m: ClassOfService) -> Iterator[Landing]:
    if ctx.scope("classes_of_service", "cluster") == "none":
        return
    fields = _rec(number=m.number, comment=m.comment, options=dict(m.options))
    for el in ctx.topo.call_servers:
        yield Landing(el, "cos", key, fields)


def _cor(ctx: _Context, key: str, m: CorGroup) -> Iterator[Landing]:
    if ctx.scope("cor_groups", "cluster") == "none":
        return
    fields = _rec(number=m.number, comment=m.comment, members=list(m.members))
    for el in ctx.topo.call_servers:
        yield Landing(el, "cor_groups", key, fields)


def _named(collection: str, kind: str) -> Callable[[_Context, str, Any], Iterator[Landing]]:
    def project(ctx: _Context, key: str, m: Department | Location) -> Iterator[Landing]:
        scope = ctx.scope(kind, "all_elements")
        targets = ctx.topo.micollab
        if scope == "call_servers":
            targets = ctx.topo.call_servers
        elif scope != "none":
            targets = ctx.topo.micollab + ctx.topo.call_servers
        fields = _rec(name=m.name, description=m.description)
        for el in targets:
            yield Landing(el, collection, key, fields)

    return project


def _template(ctx: _Context, key: str, m: Template) -> Iterator[Landing]:
    fields = _rec(
        name=m.name,
        description=m.description,
        phones=[p.model_dump() for p in m.phones],
        cos=m.cos.numbers() if m.cos else None,
        cor=m.cor.numbers() if m.cor else None,
    )
    for el in ctx.template_elements(m.admin_group):
        yield Landing(el, "templates", key, fields)


def _role(ctx: _Context, key: str, m: Role) -> Iterator[Landing]:
    template = ctx.templates.get(m.template)
    fields = _rec(name=m.name, description=m.description, template=m.template)
    targets = ctx.template_elements(template.admin_group if template else None)
    if ctx.scope("roles", "admin_group") == "none":
        targets = ctx.topo.micollab
    for el in targets:
        yield Landing(el, "roles", key, fields, (("templates", m.template),))


def _user(ctx: _Context, key: str, u: User) -> Iterator[Landing]:
    topo = ctx.topo
    role = ctx.roles_folded.get(u.role.casefold()) if u.role else None
    template_name = u.template or (role.template if role else None)
    template = ctx.templates.get(template_name) if template_name else None
    directory_name = u.effective_directory_name()
    vm = ctx.fp.field(u.voicemail_pin) if u.voicemail_pin else None

    phones: list[Fields] = []
    directory: list[Fields] = []
    deps: list[RecordRef] = []
    for i, s in enumerate(u.services):
        tphone = template.phones[i] if template and i < len(template.phones) else None
        cos = s.cos or (template.cos if template else None)
        cor = s.cor or (template.cor if template else None)
        phone: Fields = {
            "dn": s.dn,
            "label": s.label or (tphone.label if tphone else f"Phone {i + 1}"),
            "device_type": s.device_type or (tphone.device_type if tphone else "generic"),
        }
        directory.append(dict(phone))
        if cos:
            n = cos.numbers()
            phone["cos_day"], phone["cos_night1"], phone["cos_night2"] = (
                str(n["day"]),
                str(n["night1"]),
                str(n["night2"]),
            )
            deps.extend(("cos", str(x)) for x in set(n.values()))
        if cor:
            n = cor.numbers()
            phone["cor_day"], phone["cor_night1"], phone["cor_night2"] = (
                n["day"],
                n["night1"],
                n["night2"],
            )
            deps.extend(("cor_groups", str(x)) for x in set(n.values()))
        if s.hot_desk_pin:
            phone["hot_desk_pin"] = ctx.fp.field(s.hot_desk_pin)
        phones.append(phone)

    common = {
        "login_id": u.login_id,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "directory_name": directory_name,
        "department": u.department,
        "location": u.location,
    }
    place: list[RecordRef] = []
    if u.department:
        place.append(("departments", u.department))
    if u.location:
        place.append(("locations", u.location))

    user_fields = _rec(
        **common,
        email=u.email,
        role=u.role,
        template=template_name,
        host=u.host,
        services=directory,
    )
    if vm is not None:
        user_fields["voicemail_pin"] = vm
    mcl_deps = list(place)
    if u.role:
        mcl_deps.append(("roles", role.name if role else u.role))
    if template_name:
        mcl_deps.append(("templates", template_name))
    for el in topo.micollab:
        yield Landing(el, "users", key, user_fields, tuple(mcl_deps))

    scope = ctx.scope("users", "cluster")
    if scope == "none":
        return
    hosts = [u.host] if scope == "hosting_element" else topo.pair(u.host)
    phone_fields = _rec(**common, services=phones)
    phone_deps = tuple(dict.fromkeys(deps + place))
    for el in hosts:
        yield Landing(el, "users", key, phone_fields, phone_deps)

    if scope in ("hosting_element", "resilient_pair"):
        return
    if scope in ("call_servers", "all_elements"):
        others = topo.call_servers
    elif scope == "admin_group":
        others = topo.admin_group_of(u.host)
    else:
        others = topo.cluster_of(u.host)
    for el in others:
        if el in hosts:
            continue
        for p in directory:
            yield Landing(
                el,
                "remote_directory",
                p["dn"],
                _rec(dn=p["dn"], directory_name=directory_name, host=u.host, login_id=u.login_id),
            )


def _ivr_targets(ctx: _Context, kind: str) -> list[str]:
    return [] if ctx.scope(kind, "all_elements") == "none" else ctx.topo.ivr_servers


def _media_server(ctx: _Context, key: str, m: MediaServer) -> Iterator[Landing]:
    fields = _rec(**m.model_dump())
    for el in _ivr_targets(ctx, "ivr_media_servers"):
        yield Landing(el, "media_servers", key, fields)


def _prompt(ctx: _Context, key: str, m: Prompt) -> Iterator[Landing]:
    audio = ctx.audio(m.file)
    fields = _rec(
        name=m.name,
        language=m.language,
        file=m.file,
        description=m.description,
        audio_sha256=audio[0] if audio else None,
        audio_bytes=audio[1] if audio else None,
    )
    for el in _ivr_targets(ctx, "prompts"):
        yield Landing(el, "prompts", key, fields)


def _step_deps(ctx: _Context, steps: list[Step]) -> list[RecordRef]:
    prompts = ctx.state.of("prompts")
    deps: list[RecordRef] = []
    for s in steps:
        if s.prompt:
            deps.extend(("prompts", k) for k, p in prompts.items() if p.name == s.prompt)
        if s.subroutine:
            deps.append(("subroutines", s.subroutine))
        for choice in s.choices.values():
            kind, _, name = choice.partition(":")
            if kind == "subroutine" and name:
                deps.append(("subroutines", name))
    return list(dict.fromkeys(deps))


def _steps(steps: list[Step]) -> list[Fields]:
    return [s.model_dump(exclude_defaults=True) for s in steps]


def _subroutine(ctx: _Context, key: str, m: Subroutine) -> Iterator[Landing]:
    fields = _rec(
        name=m.name, media_type=m.media_type, description=m.description, steps=_steps(m.steps)
    )
    deps = tuple(d for d in _step_deps(ctx, m.steps) if d != ("subroutines", key))
    for el in _ivr_targets(ctx, "subroutines"):
        yield Landing(el, "subroutines", key, fields, deps)


def _workflow(ctx: _Context, key: str, m: Workflow) -> Iterator[Landing]:
    fields = _rec(
        name=m.name,
        media_type=m.media_type,
        description=m.description,
        media_servers=list(m.media_servers),
        steps=_steps(m.steps),
    )
    deps = _step_deps(ctx, m.steps) + [("media_servers", s) for s in m.media_servers]
    for el in _ivr_targets(ctx, "workflows"):
        yield Landing(el, "workflows", key, fields, tuple(deps))


PROJECTIONS: dict[str, Callable[[_Context, str, Any], Iterator[Landing]]] = {
    "classes_of_service": _cos,
    "cor_groups": _cor,
    "departments": _named("departments", "departments"),
    "locations": _named("locations", "locations"),
    "templates": _template,
    "roles": _role,
    "users": _user,
    "ivr_media_servers": _media_server,
    "prompts": _prompt,
    "subroutines": _subroutine,
    "workflows": _workflow,
}


def _no_files(rel: str) -> bytes | None:
    return None


def landings(
    state: DesiredState,
    kind: str,
    key: str,
    fingerprints: Fingerprinter,
    read_other: Callable[[str], bytes | None] = _no_files,
) -> list[Landing]:
    """Where one resource lands (for `provgit show`)."""
    model = state.of(kind).get(key)
    fn = PROJECTIONS.get(kind)
    if model is None or fn is None:
        return []
    return list(fn(_Context(state, fingerprints, read_other), key, model))


def project(
    state: DesiredState,
    fingerprints: Fingerprinter,
    read_other: Callable[[str], bytes | None] = _no_files,
) -> Target:
    ctx = _Context(state, fingerprints, read_other)
    records: dict[str, Records] = {name: {} for name in state.elements}
    depends: dict[str, dict[RecordRef, tuple[RecordRef, ...]]] = {n: {} for n in state.elements}
    origin: dict[str, dict[RecordRef, tuple[str, str]]] = {n: {} for n in state.elements}
    all_excluded: set[tuple[str, str]] = set()
    for kind, fn in PROJECTIONS.items():
        sharing = state.settings.sharing.get(kind)
        excluded = set(sharing.exclude) if sharing else set()
        all_excluded.update((kind, k) for k in excluded)
        for key, model in state.of(kind).items():
            if key in excluded:
                continue
            for land in fn(ctx, key, model):
                ref = (land.collection, land.key)
                records[land.element].setdefault(land.collection, {})[land.key] = land.fields
                if land.depends_on:
                    depends[land.element][ref] = land.depends_on
                if land.collection == "remote_directory":
                    origin[land.element][ref] = (kind, key)
    return Target(
        records, depends, origin, list(dict.fromkeys(fingerprints.unresolved)), all_excluded
    )
