"""Import's decision for one user: which call server hosts it, whose user data
and phone data win (`import.rules`), the secrets it needs, and the services
written as a person writes them (what the template gives left out).

The analysis (`analysis.py`) settles the result like any other item."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from provgit.importing.items import (
    RULE_HOST,
    RULE_LOGIN,
    Conflict,
    SecretNote,
    Side,
    canon,
    dump,
    env_name,
    rule_phone_data,
    rule_user_data,
    sides,
)
from provgit.importing.pairing import UserGroup
from provgit.importing.reverse import UserView, expand, period_set
from provgit.model.settings import ImportRules
from provgit.model.state import DesiredState
from provgit.model.telephony import Role, Template, User
from provgit.projection.topology import Topology
from provgit.records import DIRECTORY

USER_DATA = ("first_name", "last_name", "directory_name", "department", "location")


class UserDecider:
    def __init__(
        self,
        state: DesiredState,
        rules: ImportRules,
        topo: Topology,
        order: Mapping[str, int],
        final: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.state = state
        self.rules = rules
        self.topo = topo
        self.order = order
        # kind -> key -> model: the config as it will be written (the analysis's, shared)
        self.final = final

    def host(self, g: UserGroup) -> tuple[str | None, list[Conflict], list[str]]:
        holders = sorted(g.phones, key=lambda e: self.order[e])
        central = g.central
        named = central.fields.get("host") if central else None
        conflicts: list[Conflict] = []
        if not holders:
            if named in self.topo.call_servers:
                return str(named), [], []
            yaml_user = self.state.of("users").get(g.login)
            if yaml_user is not None:
                return str(yaml_user.host), [], []
            return (
                None,
                [],
                [
                    f"no call server holds a phone record for {g.login} and MiCollab names "
                    f"no known host ({named or 'none'})"
                ],
            )
        if named in holders:
            host = str(named)
        else:
            votes = Counter(r.host for r in g.remote if r.host in holders)
            if votes:
                host = str(votes.most_common(1)[0][0])
            else:
                paired = [h for h in holders if set(self.topo.pair(h)) <= set(holders)]
                host = (paired or holders)[0]
            if named:
                conflicts.append(
                    Conflict(
                        "host",
                        [
                            Side(central.element if central else "micollab", {"host": named}),
                            Side(", ".join(holders), {"holds the phone record": True}),
                        ],
                        host,
                        RULE_HOST,
                    )
                )
        strays = [h for h in holders if h not in self.topo.pair(host)]
        if strays:
            conflicts.append(
                Conflict(
                    "host",
                    [Side(h, {"holds a phone record": True}) for h in holders],
                    host,
                    RULE_HOST + f"; the record on {', '.join(strays)} is left alone",
                )
            )
        return host, conflicts, []

    def decide(
        self, g: UserGroup
    ) -> tuple[dict[str, Any], list[Conflict], list[str], list[SecretNote]]:
        """The user as import writes it, the conflicts the rules settled, and what
        keeps it Unresolved."""
        conflicts: list[Conflict] = []
        problems = list(g.conflicts)
        host, host_conflicts, host_problems = self.host(g)
        conflicts += host_conflicts
        problems += host_problems
        if g.paired_by_dn:
            conflicts.append(_login_conflict(g))
        phone = g.phones.get(host) if host else None
        if phone is None and g.phones:
            phone = g.phones[sorted(g.phones, key=lambda e: self.order[e])[0]]
        base, fields = self._user_data(g, phone, conflicts)
        services = self._phone_data(g, phone, base, conflicts)

        first, last = fields.get("first_name", ""), fields.get("last_name", "")
        data: dict[str, Any] = {
            "login_id": g.login,
            "first_name": first,
            "last_name": last,
            "email": fields.get("email"),
            "directory_name": fields.get("directory_name"),
            "department": fields.get("department"),
            "location": fields.get("location"),
            "role": fields.get("role"),
            "template": fields.get("template"),
            "host": host,
        }
        if data["directory_name"] == f"{last}, {first}":
            data["directory_name"] = None
        secrets = self._secrets(g, data, services)
        data["services"] = services
        return {k: v for k, v in data.items() if v is not None}, conflicts, problems, secrets

    def _user_data(
        self, g: UserGroup, phone: UserView | None, conflicts: list[Conflict]
    ) -> tuple[UserView, dict[str, Any]]:
        """User data: MiCollab, else the hosting call server (or the other way
        round: import.rules.user_data). Email, role, template and host are only
        on the MiCollab. Returns the view that won and the fields it gives."""
        rules = self.rules
        central = g.central
        base = central or phone
        if rules.user_data == "call_server" and phone is not None:
            base = phone
        assert base is not None
        fields = dict(central.fields) if central else {}
        if base is phone and phone is not None:
            for k in USER_DATA:
                fields.pop(k, None)
        fields.update(base.fields)
        # A directory entry carries no directory name: the phone record's stands.
        named = phone.fields.get("directory_name") if phone else None
        if base.element_type == DIRECTORY and named:
            fields["directory_name"] = named
        views = []
        for v in [*g.sources, *g.phones.values()]:
            d = {k: v.fields.get(k) for k in USER_DATA}
            if v.element_type == DIRECTORY:
                d["directory_name"] = named
            if not d.get("directory_name"):
                d["directory_name"] = f"{d.get('last_name')}, {d.get('first_name')}"
            views.append((v.element, d))
        if len({canon(d) for _, d in views}) > 1:
            conflicts.append(
                Conflict("user data", sides(views), base.element, rule_user_data(rules))
            )
        return base, fields

    def _phone_data(
        self, g: UserGroup, phone: UserView | None, base: UserView, conflicts: list[Conflict]
    ) -> list[dict[str, Any]]:
        """Phone data: the hosting call server, else MiCollab's list of phones
        (import.rules.phone_data: micollab takes its labels and device types,
        with COS/COR from the call server, the only element holding them)."""
        rules = self.rules
        services = [dict(s) for s in (phone or base).services]
        phone_source = (phone or base).element
        if rules.phone_data == "micollab" and g.micollab is not None and phone is not None:
            held = {str(s.get("dn")): s for s in phone.services}
            services = []
            for s in g.micollab.services:
                svc = dict(s)
                extra = held.get(str(s.get("dn")), {})
                svc.update({k: extra[k] for k in ("cos", "cor", "hot_desk_pin") if k in extra})
                services.append(svc)
            phone_source = g.micollab.element
        phone_views = [(v.element, list(v.services)) for v in g.phones.values()]
        if g.micollab is not None and phone is not None:
            short = [{k: s.get(k) for k in ("dn", "label", "device_type")} for s in phone.services]
            mcl = [dict(s) for s in g.micollab.services]
            if canon(mcl) != canon(short):
                conflicts.append(
                    Conflict(
                        "phone data",
                        [
                            Side(g.micollab.element, {"services": mcl}),
                            Side(phone.element, {"services": short}),
                        ],
                        phone_source,
                        rule_phone_data(rules),
                    )
                )
        for entry in g.directory.values():
            # An entry carries DNs only (primary, secondary): compare those.
            phone_dns = list(phone.dns) if phone is not None else []
            if phone is not None and list(entry.dns) != phone_dns[: len(entry.dns)]:
                conflicts.append(
                    Conflict(
                        "phone data",
                        [
                            Side(entry.element, {"dns": list(entry.dns)}),
                            Side(phone.element, {"dns": phone_dns}),
                        ],
                        phone_source,
                        rule_phone_data(rules),
                    )
                )
        if len({canon(s) for _, s in phone_views}) > 1 and phone is not None:
            conflicts.append(
                Conflict(
                    "phone data",
                    sides([(e, {"services": s}) for e, s in phone_views]),
                    phone.element,
                    rule_phone_data(rules),
                )
            )
        return services

    def _secrets(
        self, g: UserGroup, data: dict[str, Any], services: list[dict[str, Any]]
    ) -> list[SecretNote]:
        """PINs the elements hold: the YAML's reference when it has one, else a
        new environment variable to set (noted), never a value."""
        yaml_user: User | None = self.state.of("users").get(g.login)
        secrets: list[SecretNote] = []
        if g.micollab is not None and g.micollab.has_voicemail_pin:
            if yaml_user is not None and yaml_user.voicemail_pin is not None:
                data["voicemail_pin"] = dump(yaml_user.voicemail_pin)
            else:
                env = env_name("VOICEMAIL_PIN", g.login)
                data["voicemail_pin"] = {"env": env}
                secrets.append(SecretNote(env, f"users/{g.login}", "voicemail_pin"))
        yaml_pins = {
            s.dn: dump(s.hot_desk_pin)
            for s in (yaml_user.services if yaml_user else [])
            if s.hot_desk_pin is not None
        }
        for s in services:
            if s.pop("hot_desk_pin", None):
                dn = str(s["dn"])
                if dn in yaml_pins:
                    s["hot_desk_pin"] = yaml_pins[dn]
                else:
                    env = env_name("HOT_DESK_PIN", g.login, dn)
                    s["hot_desk_pin"] = {"env": env}
                    secrets.append(SecretNote(env, f"users/{g.login}", f"services[{dn}]"))
        return secrets

    def shorten_services(self, data: dict[str, Any]) -> dict[str, Any]:
        """Leave out what the user's template gives anyway, as a person writes it."""
        template = self._template_of(data)
        labels = [p.label for p in template.phones] if template else []
        devices = [p.device_type for p in template.phones] if template else []
        cos = expand(template.cos.model_dump()) if template and template.cos else None
        cor = expand(template.cor.model_dump()) if template and template.cor else None
        out: list[dict[str, Any]] = []
        for i, s in enumerate(data.get("services", [])):
            svc = {k: v for k, v in s.items() if k not in ("cos", "cor")}
            default_device = devices[i] if i < len(devices) else "generic"
            if svc.get("device_type") == default_device:
                svc.pop("device_type")
            if i >= len(labels) and svc.get("label") == f"Phone {i + 1}":
                svc.pop("label")
            for name, have, given in (("cos", s.get("cos"), cos), ("cor", s.get("cor"), cor)):
                if have is not None and have != given:
                    svc[name] = period_set(have)
            if "hot_desk_pin" in svc:
                svc["hot_desk_pin"] = svc.pop("hot_desk_pin")
            out.append(svc)
        return {**data, "services": out}

    def _template_of(self, data: Mapping[str, Any]) -> Template | None:
        templates: Mapping[str, Template] = self.final.get("templates", {})
        name = data.get("template")
        if not name and data.get("role"):
            roles: Mapping[str, Role] = self.final.get("roles", {})
            folded = {k.casefold(): r for k, r in roles.items()}
            role = folded.get(str(data["role"]).casefold())
            name = role.template if role else None
        return templates.get(str(name)) if name else None


def _login_conflict(g: UserGroup) -> Conflict:
    central = g.central
    return Conflict(
        "login id",
        [Side(central.element if central else "micollab", {"login_id": g.login})]
        + [Side(e, {"login_id": lg}) for e, lg in g.paired_by_dn.items()],
        central.element if central else g.login,
        RULE_LOGIN,
    )
