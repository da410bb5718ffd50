"""Paired views + existing YAML -> what import writes, and why.

Every resource the elements hold ends up as one item:

- Automatic: the elements agree and there is no YAML for it yet (an add), or
  nothing needs deciding;
- For Review: the elements disagree, or an element disagrees with the
  existing YAML. Both sides are kept in the item with the choice the rule in
  force made, so a reviewer can overturn it;
- Unresolved: nobody can decide it without a person (two users claiming one
  DN, a role whose template exists nowhere, audio that is not in the repo,
  anything that would not validate). Nothing Unresolved is written, and
  whatever depends on it becomes Unresolved too.

Resources whose YAML already says what the elements hold are only counted.

Rules in force (`import.rules` in provgit.yaml; the defaults are `RULES`, the
seeds' rule): MiCollab wins for user data (and the centrally provisioned
templates, roles, departments, locations); the hosting call server wins for
phone data; elsewhere the value most elements hold wins, ties going to
the element listed first in the config; and existing YAML wins over the
elements unless `prefer_element` (`--prefer-element`, and always for `--drift`,
whose branch is itself the proposal a person reviews).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from provgit.importing.pairing import Group, UserGroup, fold, pair
from provgit.importing.reverse import ElementViews, expand, period_set, reverse
from provgit.model.common import Model
from provgit.model.findings import Pointer
from provgit.model.kinds import KINDS
from provgit.model.settings import ImportRules
from provgit.model.state import DesiredState
from provgit.model.telephony import Role, Template, User
from provgit.observe import Observation
from provgit.plan.compute import field_changes
from provgit.projection.canonical import canonical, same_value
from provgit.projection.project import landings
from provgit.projection.topology import Topology
from provgit.records import MICOLLAB, MIVB, form_name
from provgit.registry import CENTRAL_KINDS, SIMPLE_KINDS, collections_of
from provgit.secrets import SENSITIVE, UNRESOLVED, Fingerprinter, is_sensitive
from provgit.source import ConfigSource
from provgit.validate.rules import check_rules

Category = Literal["automatic", "review", "unresolved"]
Action = Literal["add", "modify", "keep"]

RULE_USER = "MiCollab wins for user data; the hosting call server wins for phone data"
RULE_HOST = (
    "host = the call server holding the phone record (not a remote directory entry), "
    "the one MiCollab names if it holds it, else one whose resilient partner holds it too"
)
RULE_CENTRAL = "MiCollab wins (templates, roles, departments and locations are provisioned there)"
RULE_MAJORITY = "most elements win; a tie goes to the element listed first in the config"
RULE_YAML = "existing YAML wins (--prefer-element takes the elements' side)"
RULE_ELEMENT = "the elements win over existing YAML (--prefer-element)"
RULE_DRIFT = "the elements win over existing YAML (--drift: the branch is the proposal)"
RULE_LOGIN = "MiCollab's login id wins; the phone record is paired with it by DN"
RULES = [RULE_USER, RULE_HOST, RULE_CENTRAL, RULE_MAJORITY, RULE_YAML]  # the defaults


def rule_user_data(rules: ImportRules) -> str:
    if rules.user_data == "micollab":
        return "MiCollab wins for user data (import.rules.user_data: micollab)"
    return "the hosting call server wins for user data (import.rules.user_data: call_server)"


def rule_phone_data(rules: ImportRules) -> str:
    if rules.phone_data == "call_server":
        return "the hosting call server wins for phone data (import.rules.phone_data: call_server)"
    return (
        "MiCollab wins for phone labels and device types; COS/COR come from the hosting "
        "call server (import.rules.phone_data: micollab)"
    )


def rule_central(rules: ImportRules) -> str:
    if rules.central == "micollab":
        return RULE_CENTRAL + " (import.rules.central: micollab)"
    return (
        "templates, roles, departments and locations: "
        + RULE_MAJORITY
        + (" (import.rules.central: majority)")
    )


# Kinds provisioned centrally on MiCollab (from the registry).
CENTRAL = CENTRAL_KINDS
USER_DATA = ("first_name", "last_name", "directory_name", "department", "location")
YAML_SOURCE = "yaml"


@dataclass(frozen=True)
class Options:
    prefer_element: bool = False
    drift: bool = False


@dataclass
class Side:
    source: str  # element names, comma separated, or "yaml"
    values: dict[str, Any]


@dataclass
class Conflict:
    """One disagreement in an item: the sides, and which one the rule chose."""

    what: str
    sides: list[Side]
    chosen: str
    rule: str


@dataclass
class SecretNote:
    env: str
    resource: str
    field: str


@dataclass
class Drifted:
    """One record on one element that is not what the existing YAML puts there."""

    element: str
    form: str
    collection: str
    key: str
    op: Literal["changed", "added", "missing"]
    # field path -> (the YAML's value, the element's); secrets as "(secret)"
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass
class Item:
    kind: str
    key: str
    category: Category
    action: Action
    summary: str
    data: dict[str, Any] | None = None  # the resource as written (YAML shape)
    elements: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    # What a later apply changes on the elements: records whose losing side is
    # overwritten (modify) or that are missing (add).
    overwrites: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[SecretNote] = field(default_factory=list)
    # Where the elements differ from what the existing YAML puts there, field by
    # field (`changed`), or hold a record the YAML has not (`added`): the drift.
    drifted: list[Drifted] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.key}"

    @property
    def written(self) -> bool:
        return self.category != "unresolved" and self.action in ("add", "modify")


@dataclass
class Analysis:
    items: list[Item]
    unchanged: int
    only_in_yaml: int
    elements: dict[str, str]  # element -> state as observed (running, offline, …)
    skipped: list[dict[str, str]]  # records that could not be read back
    options: Options
    rule_set: ImportRules = field(default_factory=ImportRules)

    def by_category(self, category: Category) -> list[Item]:
        return [i for i in self.items if i.category == category]

    @property
    def writes(self) -> list[Item]:
        return [i for i in self.items if i.written]

    @property
    def rules(self) -> list[str]:
        """The rules in force, as the report states them (import.rules, then the options)."""
        last = RULE_DRIFT if self.options.drift else RULE_ELEMENT
        return [
            f"{rule_user_data(self.rule_set)}; {rule_phone_data(self.rule_set)}",
            RULE_HOST,
            rule_central(self.rule_set),
            RULE_MAJORITY,
            last if self.options.prefer_element else RULE_YAML,
        ]


# ---- helpers ------------------------------------------------------------------


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _sides(views: Sequence[tuple[str, dict[str, Any]]]) -> list[Side]:
    """Group sources holding the same value; keep only the fields that differ."""
    grouped: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for source, data in views:
        c = _canon(data)
        if c not in grouped:
            grouped[c] = ([], data)
        grouped[c][0].append(source)
    datas = [d for _, d in grouped.values()]
    keys = sorted({k for d in datas for k in d})
    differ = [k for k in keys if len({_canon(d.get(k)) for d in datas}) > 1]
    return [
        Side(", ".join(sources), {k: d.get(k) for k in differ}) for sources, d in grouped.values()
    ]


def _dump(model: Model) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_defaults=True, exclude_none=True)


def _env_name(*parts: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", "_".join(parts).upper())


class _Blind(Fingerprinter):
    """Secrets are compared by nobody here: a PIN never decides a pairing."""

    def __init__(self) -> None:
        super().__init__(None, resolve_values=False)

    def field(self, ref: Any) -> dict[str, Any]:
        return {SENSITIVE: UNRESOLVED, "ref": ref.describe()}


# ---- the analysis -------------------------------------------------------------


class _Analyser:
    def __init__(
        self,
        state: DesiredState,
        source: ConfigSource,
        observed: Mapping[str, Observation],
        options: Options,
    ) -> None:
        self.state = state
        self.source = source
        self.observed = observed
        self.options = options
        self.rules = state.settings.import_.rules
        self.topo = Topology.of(state.elements)
        self.order = {name: i for i, name in enumerate(state.elements)}
        self.etypes = {n: e.type for n, e in state.elements.items() if n in observed}
        self.items: list[Item] = []
        self.unchanged = 0
        # kind -> key -> model: the config as it will be written
        self.final: dict[str, dict[str, Any]] = {k: dict(v) for k, v in state.resources.items()}

    # -- simple kinds --

    def choose(self, group: Group) -> tuple[dict[str, Any], list[Conflict], list[str]]:
        by_value: dict[str, list[str]] = {}
        data_of: dict[str, dict[str, Any]] = {}
        for v in group.views:
            c = _canon(canonical(group.kind, v.data))
            by_value.setdefault(c, []).append(v.element)
            data_of[c] = v.data
        conflicts: list[Conflict] = []
        if len(by_value) == 1:
            chosen = next(iter(by_value))
        else:
            mcl = [c for c, els in by_value.items() if any(self._is(e, MICOLLAB) for e in els)]
            if group.kind in CENTRAL and mcl and self.rules.central == "micollab":
                chosen, rule = mcl[0], rule_central(self.rules)
            else:
                # Most elements; then the earliest element in the config.
                chosen = min(
                    by_value,
                    key=lambda c: (-len(by_value[c]), min(self.order[e] for e in by_value[c])),
                )
                rule = RULE_MAJORITY
            conflicts.append(
                Conflict(
                    "the elements disagree",
                    _sides([(", ".join(els), data_of[c]) for c, els in by_value.items()]),
                    ", ".join(by_value[chosen]),
                    rule,
                )
            )
        data = dict(data_of[chosen])
        problems: list[str] = []
        if group.kind == "templates":
            holders = [v.element for v in group.views if self._is(v.element, MIVB)]
            data = self._admin_group(data, holders)
        if group.kind == "prompts":
            meta = next(
                v.meta for v in group.views if _canon(canonical(group.kind, v.data)) == chosen
            )
            problem = self._audio(data, meta)
            if problem:
                problems.append(problem)
        return data, conflicts, problems

    def _is(self, element: str, etype: str) -> bool:
        return self.etypes.get(element) == etype

    def _admin_group(self, data: dict[str, Any], holders: list[str]) -> dict[str, Any]:
        """Templates do not carry their admin group: it is where they are shared."""
        scope = self.state.settings.sharing.get("templates")
        if (scope and scope.scope not in (None, "admin_group")) or not holders:
            return data
        held = set(holders)
        if held >= set(self.topo.call_servers):
            return data
        best = max(
            self.topo.admin_groups.items(),
            key=lambda g: (len(held & set(g[1])), -len(g[1])),
            default=None,
        )
        if best is None or not held & set(best[1]):
            return data
        out = {k: v for k, v in data.items() if k not in ("phones", "cos", "cor")}
        out["admin_group"] = best[0]
        for k in ("phones", "cos", "cor"):
            if k in data:
                out[k] = data[k]
        return out

    def _audio(self, data: dict[str, Any], meta: dict[str, Any]) -> str | None:
        file = data.get("file")
        if not file:
            return "the element gives no audio file name for this prompt"
        found = self.source.read_other(str(file))
        want = meta.get("audio_sha256")
        if found is None:
            return (
                f"its audio is not in the config repository: put the file the element plays "
                f"(sha256 {want}, {meta.get('audio_bytes')} bytes) at {file}, then import again"
            )
        if want and hashlib.sha256(found).hexdigest() != want:
            return (
                f"{file} in the repository is not the audio the element plays (sha256 {want}): "
                "replace it, then import again"
            )
        return None

    def simple(self, groups: Mapping[str, Mapping[str, Group]], kinds: Sequence[str]) -> None:
        for kind in kinds:
            existing = {fold(kind, k): k for k in self.state.of(kind)}
            for key, group in groups.get(kind, {}).items():
                data, conflicts, problems = self.choose(group)
                yaml_key = existing.get(fold(kind, key), key)
                if kind in ("roles",) and yaml_key != key and "name" in data:
                    data["name"] = yaml_key
                self.settle(
                    kind, yaml_key, data, [v.element for v in group.views], conflicts, problems, []
                )

    # -- users --

    def users(self, groups: Mapping[str, UserGroup]) -> None:
        for login, g in groups.items():
            data, conflicts, problems, secrets = self.user(g)
            elements = ([g.micollab.element] if g.micollab else []) + list(g.phones)
            self.settle("users", login, data, elements, conflicts, problems, secrets)

    def _host(self, g: UserGroup) -> tuple[str | None, list[Conflict], list[str]]:
        holders = sorted(g.phones, key=lambda e: self.order[e])
        named = g.micollab.fields.get("host") if g.micollab else None
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
                            Side(g.micollab.element if g.micollab else "micollab", {"host": named}),
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

    def user(
        self, g: UserGroup
    ) -> tuple[dict[str, Any], list[Conflict], list[str], list[SecretNote]]:
        conflicts: list[Conflict] = []
        problems = list(g.conflicts)
        host, host_conflicts, host_problems = self._host(g)
        conflicts += host_conflicts
        problems += host_problems
        if g.paired_by_dn:
            conflicts.append(
                Conflict(
                    "login id",
                    [Side(g.micollab.element if g.micollab else "micollab", {"login_id": g.login})]
                    + [Side(e, {"login_id": lg}) for e, lg in g.paired_by_dn.items()],
                    g.micollab.element if g.micollab else g.login,
                    RULE_LOGIN,
                )
            )
        phone = g.phones.get(host) if host else None
        if phone is None and g.phones:
            phone = g.phones[sorted(g.phones, key=lambda e: self.order[e])[0]]

        # User data: MiCollab, else the hosting call server (or the other way
        # round: import.rules.user_data). Email, role, template and host are
        # only on the MiCollab.
        rules = self.rules
        base = g.micollab or phone
        if rules.user_data == "call_server" and phone is not None:
            base = phone
        assert base is not None
        fields = dict(g.micollab.fields) if g.micollab else {}
        if base is phone and phone is not None:
            for k in USER_DATA:
                fields.pop(k, None)
        fields.update(base.fields)
        first, last = fields.get("first_name", ""), fields.get("last_name", "")
        views = []
        for v in ([g.micollab] if g.micollab else []) + list(g.phones.values()):
            d = {k: v.fields.get(k) for k in USER_DATA}
            if not d.get("directory_name"):
                d["directory_name"] = f"{d.get('last_name')}, {d.get('first_name')}"
            views.append((v.element, d))
        if len({_canon(d) for _, d in views}) > 1:
            conflicts.append(
                Conflict("user data", _sides(views), base.element, rule_user_data(rules))
            )

        # Phone data: the hosting call server, else MiCollab's list of phones
        # (import.rules.phone_data: micollab takes its labels and device types,
        # with COS/COR from the call server, the only element holding them).
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
            if _canon(mcl) != _canon(short):
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
        if len({_canon(s) for _, s in phone_views}) > 1 and phone is not None:
            conflicts.append(
                Conflict(
                    "phone data",
                    _sides([(e, {"services": s}) for e, s in phone_views]),
                    phone.element,
                    rule_phone_data(rules),
                )
            )

        yaml_user: User | None = self.state.of("users").get(g.login)
        secrets: list[SecretNote] = []
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
        if g.micollab is not None and g.micollab.has_voicemail_pin:
            if yaml_user is not None and yaml_user.voicemail_pin is not None:
                data["voicemail_pin"] = _dump(yaml_user.voicemail_pin)
            else:
                env = _env_name("VOICEMAIL_PIN", g.login)
                data["voicemail_pin"] = {"env": env}
                secrets.append(SecretNote(env, f"users/{g.login}", "voicemail_pin"))
        yaml_pins = {
            s.dn: _dump(s.hot_desk_pin)
            for s in (yaml_user.services if yaml_user else [])
            if s.hot_desk_pin is not None
        }
        for s in services:
            if s.pop("hot_desk_pin", None):
                dn = str(s["dn"])
                if dn in yaml_pins:
                    s["hot_desk_pin"] = yaml_pins[dn]
                else:
                    env = _env_name("HOT_DESK_PIN", g.login, dn)
                    s["hot_desk_pin"] = {"env": env}
                    secrets.append(SecretNote(env, f"users/{g.login}", f"services[{dn}]"))
        data["services"] = services
        return {k: v for k, v in data.items() if v is not None}, conflicts, problems, secrets

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
        templates: dict[str, Template] = self.final.get("templates", {})
        name = data.get("template")
        if not name and data.get("role"):
            roles: dict[str, Role] = self.final.get("roles", {})
            folded = {k.casefold(): r for k, r in roles.items()}
            role = folded.get(str(data["role"]).casefold())
            name = role.template if role else None
        return templates.get(str(name)) if name else None

    # -- deciding an item --

    def canonical(self, kind: str, model: Model) -> dict[str, Any]:
        """The one form plan, import and drift compare (defaults and inherited values filled)."""
        return canonical(
            kind, _dump(model), self.final.get("templates", {}), self.final.get("roles", {})
        )

    def same(self, kind: str, a: Model, b: Model) -> bool:
        return self.canonical(kind, a) == self.canonical(kind, b)

    def settle(
        self,
        kind: str,
        key: str,
        data: dict[str, Any],
        elements: list[str],
        conflicts: list[Conflict],
        problems: list[str],
        secrets: list[SecretNote],
    ) -> None:
        if kind == "users":
            data = self.shorten_services(data)
        model: Model | None = None
        if not problems:
            try:
                model = KINDS[kind].model.model_validate(data)
            except ValidationError as e:
                problems = [_pydantic_message(e)]
        existing = self.state.of(kind).get(key)
        item = Item(
            kind, key, "automatic", "add", "new", data, elements, conflicts, [], [], secrets
        )
        if problems:
            item.category, item.unresolved = "unresolved", problems
            item.action = "modify" if existing is not None else "add"
            item.summary = problems[0]
            self.items.append(item)
            return
        assert model is not None
        if existing is not None:
            if self.same(kind, existing, model):
                item.action = "keep"
                item.summary = "the YAML already says this"
            else:
                item.action = "modify" if self.options.prefer_element else "keep"
                chosen = "elements" if self.options.prefer_element else YAML_SOURCE
                rule = (
                    (RULE_DRIFT if self.options.drift else RULE_ELEMENT)
                    if self.options.prefer_element
                    else RULE_YAML
                )
                item.conflicts.append(
                    Conflict(
                        "an element disagrees with the existing YAML",
                        _sides(
                            [(YAML_SOURCE, _dump(existing)), (", ".join(elements), _dump(model))]
                        ),
                        chosen,
                        rule,
                    )
                )
            if item.action == "keep":
                item.secrets = []
        if item.conflicts:
            item.category = "review"
            item.summary = "; ".join(dict.fromkeys(c.what for c in item.conflicts))
        if item.action != "keep":
            self.final.setdefault(kind, {})[key] = model
        self.items.append(item)

    # -- the whole config, validated together --

    def validate(self) -> None:
        """Mark Unresolved whatever the written config would not validate with, until it does.

        What depends on an Unresolved item fails validation once that item is
        gone, and so becomes Unresolved in a later round. A rule about a whole
        kind (users need a MiCollab) names one record at a time: once it names
        a second, every pending item of that kind gets it at once.
        """
        pending = {(i.kind, i.key): i for i in self.items if i.written}
        kind_wide: set[tuple[str, str]] = set()
        while pending:  # each round removes at least one item
            state = self._state()
            bad: dict[tuple[str, str], list[str]] = {}
            for f in check_rules(state, self.source):
                if f.kind is None or f.key is None or (f.kind, f.key) not in pending:
                    continue
                msg = f.message.replace("{other}", "another record")
                text = f"would not validate: {msg}" + (f" ({f.hint})" if f.hint else "")
                whole_record = f.at == state.origins.get((f.kind, f.key))
                if whole_record and (f.kind, text) in kind_wide:
                    for ref in pending:
                        if ref[0] == f.kind:
                            bad.setdefault(ref, []).append(text)
                bad.setdefault((f.kind, f.key), []).append(text)
                if whole_record:
                    kind_wide.add((f.kind, text))
            if not bad:
                return
            for ref, messages in bad.items():
                item = pending.pop(ref)
                messages = list(dict.fromkeys(messages))
                item.category, item.unresolved = "unresolved", messages
                item.summary = messages[0]
                previous = self.state.of(item.kind).get(item.key)
                if previous is None:
                    self.final[item.kind].pop(item.key, None)
                else:
                    self.final[item.kind][item.key] = previous

    def _state(self) -> DesiredState:
        origins = dict(self.state.origins)
        for kind, models in self.final.items():
            for i, key in enumerate(models):
                origins.setdefault((kind, key), Pointer("(import)", (0, kind, i)))
        return DesiredState(
            self.state.settings, self.final, origins, self.state.sources, None, self.state.root
        )

    def overwrites(self) -> None:
        """What apply will then change on each element, per item."""
        state = self._state()
        fp = _Blind()
        for item in self.items:
            if item.category == "unresolved":
                continue
            for land in landings(state, item.kind, item.key, fp, self.source.read_other):
                obs = self.observed.get(land.element)
                if obs is None or not obs.ok:
                    continue
                stored = obs.records.get(land.collection, {}).get(land.key)
                if stored is None:
                    item.overwrites.append(
                        {
                            "element": land.element,
                            "collection": land.collection,
                            "key": land.key,
                            "op": "add",
                        }
                    )
                    continue
                changes = field_changes(land.fields, stored.fields)
                if changes:
                    item.overwrites.append(
                        {
                            "element": land.element,
                            "collection": land.collection,
                            "key": land.key,
                            "op": "modify",
                            "fields": sorted(changes),
                        }
                    )

    def drifts(self) -> None:
        """Per written item: which element records differ from the existing YAML, and how."""
        fp = _Blind()
        for item in self.items:
            if not item.written:
                continue
            if self.state.of(item.kind).get(item.key) is None:
                for element in item.elements:
                    etype = self.etypes.get(element, "")
                    collection = next(iter(collections_of(item.kind)), item.kind)
                    item.drifted.append(
                        Drifted(
                            element,
                            form_name(etype, collection),
                            collection,
                            item.key,
                            "added",
                        )
                    )
                continue
            for land in landings(self.state, item.kind, item.key, fp, self.source.read_other):
                obs = self.observed.get(land.element)
                if obs is None or not obs.ok:
                    continue
                form = form_name(self.etypes.get(land.element, ""), land.collection)
                stored = obs.records.get(land.collection, {}).get(land.key)
                if stored is None:
                    item.drifted.append(
                        Drifted(land.element, form, land.collection, land.key, "missing")
                    )
                    continue
                changes = field_changes(land.fields, stored.fields)
                if changes:
                    fields: dict[str, tuple[Any, Any]] = {}
                    for name, c in sorted(changes.items()):
                        # field_changes speaks apply's language (element before, YAML after);
                        # drift is the other way round: the YAML's value, then the element's.
                        fields.update(leaf_changes(name, c["after"], c["before"]))
                    item.drifted.append(
                        Drifted(land.element, form, land.collection, land.key, "changed", fields)
                    )

    def finish(self) -> list[Item]:
        # Unchanged resources are counted, not listed: they need nobody.
        kept: list[Item] = []
        for item in self.items:
            if item.action == "keep" and item.category == "automatic":
                self.unchanged += 1
                continue
            kept.append(item)
        order = {"unresolved": 0, "review": 1, "automatic": 2}
        kinds = list(KINDS)
        kept.sort(key=lambda i: (order[i.category], kinds.index(i.kind), i.key))
        return kept


SECRET = "(secret)"


def _shown(value: Any) -> Any:
    if is_sensitive(value):
        return SECRET
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def leaf_changes(path: str, before: Any, after: Any) -> dict[str, tuple[Any, Any]]:
    """A changed field, down to the leaves that differ: `services[0].label`:
    (before, after); a secret's value is never shown, only that it changed."""
    if is_sensitive(before) or is_sensitive(after):
        return {
            path: (SECRET if before is not None else None, SECRET if after is not None else None)
        }
    if isinstance(before, dict) and isinstance(after, dict):
        out: dict[str, tuple[Any, Any]] = {}
        for k in sorted(set(before) | set(after), key=str):
            if str(k).startswith("_") or same_value(before.get(k), after.get(k)):
                continue
            out.update(leaf_changes(f"{path}.{k}", before.get(k), after.get(k)))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = {}
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            if not same_value(b, a):
                out.update(leaf_changes(f"{path}[{i}]", b, a))
        return out
    return {path: (_shown(before), _shown(after))}


def _pydantic_message(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:3]:
        where = ".".join(str(x) for x in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else str(err["msg"]))
    return "would not validate: " + "; ".join(parts)


# The kinds read back one record per resource, in the registry's order.
SIMPLE_ORDER = SIMPLE_KINDS


def analyse(
    state: DesiredState,
    source: ConfigSource,
    observed: Mapping[str, Observation],
    options: Options = Options(),
    views: Mapping[str, ElementViews] | None = None,
) -> Analysis:
    """The whole import, decided: a pure function of (config, observations, options)."""
    a = _Analyser(state, source, observed, options)
    views = views if views is not None else reverse(observed, a.etypes)
    paired = pair(views, state.of("users"))
    # Templates and roles first: users are written relative to their template.
    a.simple(paired.groups, SIMPLE_ORDER)
    a.users(paired.users)
    a.validate()
    a.overwrites()
    a.drifts()
    items = a.finish()
    seen = {(i.kind, fold(i.kind, i.key)) for i in a.items}
    only_yaml = sum(
        1
        for kind, models in state.resources.items()
        if kind != "elements"
        for key in models
        if (kind, fold(kind, key)) not in seen
    )
    skipped = [
        {"element": ev.element, "collection": c, "key": k, "why": why}
        for ev in views.values()
        for c, k, why in ev.skipped
    ]
    return Analysis(
        items,
        a.unchanged,
        only_yaml,
        {n: o.state for n, o in observed.items()},
        skipped,
        options,
        a.rules,
    )
