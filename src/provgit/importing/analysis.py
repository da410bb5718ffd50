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

The values it produces (items, conflicts, the rules' wording) are in
`items.py`; the decision for one user is `users.py`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from provgit.importing.items import (
    RULE_DRIFT,
    RULE_ELEMENT,
    RULE_MAJORITY,
    RULE_YAML,
    RULES,
    YAML_SOURCE,
    Analysis,
    Category,
    Conflict,
    Drifted,
    Item,
    Options,
    SecretNote,
    Side,
    canon,
    dump,
    leaf_changes,
    pydantic_message,
    rule_central,
    sides,
)
from provgit.importing.pairing import Group, UserGroup, fold, names_only_dropped, pair
from provgit.importing.reverse import ElementViews, reverse
from provgit.importing.users import UserDecider
from provgit.model.common import Model
from provgit.model.findings import Pointer
from provgit.model.kinds import KINDS
from provgit.model.state import DesiredState
from provgit.observe import Observation
from provgit.plan.compute import field_changes
from provgit.projection.canonical import canonical
from provgit.projection.project import landings
from provgit.projection.topology import Topology
from provgit.records import MICOLLAB, MIVB, form_name
from provgit.registry import CENTRAL_KINDS, SIMPLE_KINDS, collections_of
from provgit.secrets import SENSITIVE, UNRESOLVED, Fingerprinter
from provgit.source import ConfigSource
from provgit.validate.rules import check_rules

# Kinds provisioned centrally on MiCollab (from the registry).
CENTRAL = CENTRAL_KINDS
# Re-exported: import's report, writer and drift branch read these from here.
__all__ = [
    "RULES",
    "Analysis",
    "Category",
    "Conflict",
    "Drifted",
    "Item",
    "Options",
    "SecretNote",
    "Side",
    "analyse",
    "leaf_changes",
]


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
        self.decider = UserDecider(state, self.rules, self.topo, self.order, self.final)

    # -- simple kinds --

    def choose(self, group: Group) -> tuple[dict[str, Any], list[Conflict], list[str]]:
        by_value: dict[str, list[str]] = {}
        data_of: dict[str, dict[str, Any]] = {}
        for v in group.views:
            c = canon(canonical(group.kind, v.data))
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
                    sides([(", ".join(els), data_of[c]) for c, els in by_value.items()]),
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
                v.meta for v in group.views if canon(canonical(group.kind, v.data)) == chosen
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
                if not names_only_dropped(group, existing):
                    continue
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
            data, conflicts, problems, secrets = self.decider.decide(g)
            elements = g.elements()
            self.settle("users", login, data, elements, conflicts, problems, secrets)

    # -- deciding an item --

    def canonical(self, kind: str, model: Model) -> dict[str, Any]:
        """The one form plan, import and drift compare (defaults and inherited values filled)."""
        return canonical(
            kind, dump(model), self.final.get("templates", {}), self.final.get("roles", {})
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
            data = self.decider.shorten_services(data)
        model: Model | None = None
        if not problems:
            try:
                model = KINDS[kind].model.model_validate(data)
            except ValidationError as e:
                problems = [pydantic_message(e)]
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
                        sides([(YAML_SOURCE, dump(existing)), (", ".join(elements), dump(model))]),
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


# The kinds read back one record per resource, in the registry's order.
SIMPLE_ORDER = SIMPLE_KINDS


_DEFAULTS = Options()


def analyse(
    state: DesiredState,
    source: ConfigSource,
    observed: Mapping[str, Observation],
    options: Options = _DEFAULTS,
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
