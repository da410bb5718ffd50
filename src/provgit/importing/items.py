"""What import decides, as values: items with their conflicts, secrets and
drift, the analysis as a whole, the rules it states, and the small helpers the
analysis of every kind (users included) shares."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from provgit.model.common import Model
from provgit.model.settings import ImportRules
from provgit.projection.canonical import same_value
from provgit.secrets import is_sensitive

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


def canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def sides(views: Sequence[tuple[str, dict[str, Any]]]) -> list[Side]:
    """Group sources holding the same value; keep only the fields that differ."""
    grouped: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for source, data in views:
        c = canon(data)
        if c not in grouped:
            grouped[c] = ([], data)
        grouped[c][0].append(source)
    datas = [d for _, d in grouped.values()]
    keys = sorted({k for d in datas for k in d})
    differ = [k for k in keys if len({canon(d.get(k)) for d in datas}) > 1]
    return [
        Side(", ".join(sources), {k: d.get(k) for k in differ}) for sources, d in grouped.values()
    ]


def dump(model: Model) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_defaults=True, exclude_none=True)


def env_name(*parts: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", "_".join(parts).upper())


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


def pydantic_message(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:3]:
        where = ".".join(str(x) for x in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else str(err["msg"]))
    return "would not validate: " + "; ".join(parts)
