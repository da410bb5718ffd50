"""Projections of the telephony kinds, following the SDS sharing scopes:

- classes of service and COR groups: the call servers of every cluster;
- departments and locations: MiCollab and every call server;
- templates: MiCollab plus the call servers of the template's admin group
  (every call server when it names none); roles follow their template;
- users: a user record on MiCollab (and an entry on each directory element);
  the phone record on the hosting call server and its resilient partner; a
  remote directory entry per DN on the other call servers of the host's cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provgit.projection.context import (
    NO_DEPS,
    Context,
    Emit,
    PhoneDefaults,
    Projection,
    RecordRef,
    rec,
)
from provgit.records import MANAGED_BY, MANAGED_BY_VALUE, Fields

if TYPE_CHECKING:  # the models (pydantic): a status in sync builds none
    from provgit.model.telephony import (
        ClassOfService,
        CorGroup,
        Department,
        Location,
        Role,
        Template,
        User,
    )


def cos(ctx: Context, emit: Emit, key: str, m: ClassOfService) -> None:
    if ctx.scope("classes_of_service", "cluster") == "none":
        return
    fields = rec(number=m.number, comment=m.comment, options=dict(m.options))
    for el in ctx.topo.call_servers:
        emit(el, "cos", key, fields, NO_DEPS)


def cor(ctx: Context, emit: Emit, key: str, m: CorGroup) -> None:
    if ctx.scope("cor_groups", "cluster") == "none":
        return
    fields = rec(number=m.number, comment=m.comment, members=list(m.members))
    for el in ctx.topo.call_servers:
        emit(el, "cor_groups", key, fields, NO_DEPS)


def named(collection: str, kind: str) -> Projection:
    """Departments and locations: a name and a description, on MiCollab and the call servers."""

    def project(ctx: Context, emit: Emit, key: str, m: Department | Location) -> None:
        scope = ctx.scope(kind, "all_elements")
        targets = ctx.topo.micollab
        if scope == "call_servers":
            targets = ctx.topo.call_servers
        elif scope != "none":
            targets = ctx.topo.micollab + ctx.topo.call_servers
        fields = rec(name=m.name, description=m.description)
        for el in targets:
            emit(el, collection, key, fields, NO_DEPS)

    return project


def template(ctx: Context, emit: Emit, key: str, m: Template) -> None:
    fields = rec(
        name=m.name,
        description=m.description,
        phones=[p.model_dump() for p in m.phones],
        cos=m.cos.numbers() if m.cos else None,
        cor=m.cor.numbers() if m.cor else None,
    )
    for el in ctx.template_elements(m.admin_group):
        emit(el, "templates", key, fields, NO_DEPS)


def role(ctx: Context, emit: Emit, key: str, m: Role) -> None:
    template = ctx.templates.get(m.template)
    fields = rec(name=m.name, description=m.description, template=m.template)
    targets = ctx.template_elements(template.admin_group if template else None)
    if ctx.scope("roles", "admin_group") == "none":
        targets = ctx.topo.micollab
    for el in targets:
        emit(el, "roles", key, fields, (("templates", m.template),))


def user(ctx: Context, emit: Emit, key: str, u: User) -> None:
    role = ctx.roles_folded.get(u.role.casefold()) if u.role else None
    template_name = u.template or (role.template if role else None)
    defaults = ctx.phone_defaults(template_name)
    directory_name = u.effective_directory_name()
    phones, directory, deps = _services(ctx, u, defaults)
    place: tuple[RecordRef, ...] = ()
    if u.department:
        place += (("departments", u.department),)
    if u.location:
        place += (("locations", u.location),)
    _micollab_user(ctx, emit, key, u, directory_name, template_name, role, directory, place)
    if ctx.topo.directories:
        _directory_user(ctx, emit, key, u, [str(p["dn"]) for p in directory])

    scope = ctx.scope("users", "cluster")
    if scope == "none":
        return
    hosts = [u.host] if scope == "hosting_element" else ctx.topo.pair(u.host)
    phone_deps = (
        defaults.deps + place if not deps else tuple(dict.fromkeys((*deps, *defaults.deps, *place)))
    )
    _phone_records(emit, key, u, directory_name, phones, hosts, phone_deps)
    if scope not in ("hosting_element", "resilient_pair"):
        _remote_directory(ctx, emit, u, directory_name, scope, hosts, directory)


def _services(
    ctx: Context, u: User, defaults: PhoneDefaults
) -> tuple[list[Fields], list[Fields], list[RecordRef]]:
    """Per service: the phone record's entry, MiCollab's short entry, and the
    COS/COR the service names itself (its template's otherwise)."""
    phones: list[Fields] = []
    directory: list[Fields] = []
    deps: list[RecordRef] = []
    n_labels = len(defaults.labels)
    for i, s in enumerate(u.services):
        label = s.label or (defaults.labels[i] if i < n_labels else f"Phone {i + 1}")
        device = s.device_type or (defaults.device_types[i] if i < n_labels else "generic")
        directory.append({"dn": s.dn, "label": label, "device_type": device})
        phone: Fields = {"dn": s.dn, "label": label, "device_type": device}
        if s.cos is None:
            phone.update(defaults.cos)
        else:
            fields, more = ctx.cos_fields(s.cos)
            phone.update(fields)
            deps.extend(more)
        if s.cor is None:
            phone.update(defaults.cor)
        else:
            cor_f, cor_d = ctx.cor_fields(s.cor)
            phone.update(cor_f)
            deps.extend(cor_d)
        if s.hot_desk_pin:
            phone["hot_desk_pin"] = ctx.fp.field(s.hot_desk_pin)
        phones.append(phone)
    return phones, directory, deps


def _person(u: User, directory_name: str) -> Fields:
    """The fields a user's MiCollab and phone records start with, in their
    order: the records are built as dicts, not by `rec(**kwargs)` (keyword
    arguments gathered per user), with the same fields in the same order."""
    return {
        "login_id": u.login_id,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "directory_name": directory_name,
        "department": u.department,
        "location": u.location,
    }


def _micollab_user(
    ctx: Context,
    emit: Emit,
    key: str,
    u: User,
    directory_name: str,
    template_name: str | None,
    role: Role | None,
    directory: list[Fields],
    place: tuple[RecordRef, ...],
) -> None:
    user_fields = _person(u, directory_name)  # then `rec(...)`'s order
    user_fields["email"] = u.email
    user_fields["role"] = u.role
    user_fields["template"] = template_name
    user_fields["host"] = u.host
    user_fields["services"] = directory
    user_fields[MANAGED_BY] = MANAGED_BY_VALUE
    if u.voicemail_pin:
        user_fields["voicemail_pin"] = ctx.fp.field(u.voicemail_pin)
    mcl_deps = place
    if u.role:
        mcl_deps += (("roles", role.name if role else u.role),)
    if template_name:
        mcl_deps += (("templates", template_name),)
    for el in ctx.topo.micollab:
        emit(el, "users", key, user_fields, mcl_deps)


def _phone_records(
    emit: Emit,
    key: str,
    u: User,
    directory_name: str,
    phones: list[Fields],
    hosts: list[str],
    deps: tuple[RecordRef, ...],
) -> None:
    phone_fields = _person(u, directory_name)  # then `rec(...)`'s order
    phone_fields["services"] = phones
    phone_fields[MANAGED_BY] = MANAGED_BY_VALUE
    for el in hosts:
        emit(el, "users", key, phone_fields, deps)


def _remote_directory(
    ctx: Context,
    emit: Emit,
    u: User,
    directory_name: str,
    scope: str,
    hosts: list[str],
    directory: list[Fields],
) -> None:
    """A remote directory entry per DN on the call servers in scope that do not host the user."""
    topo = ctx.topo
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
            emit(
                el,
                "remote_directory",
                p["dn"],
                {
                    "dn": p["dn"],
                    "directory_name": directory_name,
                    "host": u.host,
                    "login_id": u.login_id,
                    MANAGED_BY: MANAGED_BY_VALUE,
                },
                NO_DEPS,
            )


def _directory_user(ctx: Context, emit: Emit, key: str, u: User, dns: list[str]) -> None:
    """A directory element (MiCollab IDS's source) gets the user as an entry: only
    the fields its attribute mapping carries, so what it reads back compares equal."""
    values: dict[str, Any] = {
        "login_id": u.login_id,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "email": u.email,
        "department": u.department,
        "location": u.location,
        "primary_dn": dns[0] if dns else None,
        "secondary_dn": dns[1] if len(dns) > 1 else None,
        "role": u.role,
        "host": u.host,
    }
    for el in ctx.topo.directories:
        settings = ctx.topo.elements[el].directory
        if settings is None:
            continue
        carried = settings.mapping()
        fields = rec(**{f: v for f, v in values.items() if f in carried and v is not None})
        emit(el, "users", key, fields, NO_DEPS)
