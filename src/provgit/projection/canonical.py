"""One canonical form of a resource, so "equal" means the same in plan, import and drift.

A person may write the same thing several ways: `cos: {day: 40, night1: 40}` and
`cos: {day: 40}` (a night band falls back to the band before it), a service
label or COS their template gives anyway, an empty list or none at all, `dn: 2113`
or `dn: "2113"` where the element stores text. `canonical` reduces every such
form to one record; `same_value` is the matching rule for two field values as
the elements hold them. The projection (`target.project`) fills defaults the
same way, so two resources with equal canonical forms project to the same
records, and the plan finds nothing to do between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PERIODS = ("day", "night1", "night2")
PERIOD_KEYS = frozenset({"cos", "cor"})


def is_empty(value: Any) -> bool:
    """Absent, null, empty text, empty list and empty map all say "nothing here"."""
    return value is None or value == "" or value == [] or value == {}


def periods(value: Any) -> dict[str, int] | None:
    """A period set (`{day, night1?, night2?}`) with every band filled as the element
    holds it: night1 falls back to day, night2 to night1."""
    if isinstance(value, Mapping):
        bands: dict[str, Any] = {p: value.get(p) for p in PERIODS}
    elif hasattr(value, "day"):
        bands = {p: getattr(value, p, None) for p in PERIODS}
    else:
        return None
    if bands["day"] is None:
        return None
    try:
        day = int(bands["day"])
        n1 = int(bands["night1"]) if bands["night1"] is not None else day
        n2 = int(bands["night2"]) if bands["night2"] is not None else n1
    except (TypeError, ValueError):
        return None
    return {"day": day, "night1": n1, "night2": n2}


def scalar(value: Any) -> Any:
    """A number and the text of that number are one value (elements store DNs as text)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    return value


def normal(value: Any, key: str | None = None) -> Any:
    """Structure-only normal form: empties dropped, period sets filled, numbers as text."""
    if isinstance(value, Mapping):
        if key in PERIOD_KEYS:
            filled = periods(value)
            if filled is not None:
                return {k: str(v) for k, v in filled.items()}
        out = {}
        for k, v in value.items():
            if is_empty(v):
                continue
            out[str(k)] = normal(v, str(k))
        return out
    if isinstance(value, list | tuple):
        return [normal(v) for v in value]
    return scalar(value)


def same_value(a: Any, b: Any) -> bool:
    """Two values as elements hold them mean the same (see `normal`)."""
    if a == b:
        return True
    if is_empty(a) and is_empty(b):
        return True
    return bool(normal(a) == normal(b))


def _template_of(
    data: Mapping[str, Any], templates: Mapping[str, Any], roles: Mapping[str, Any]
) -> Any:
    name = data.get("template")
    if not name and data.get("role"):
        folded = {str(k).casefold(): r for k, r in roles.items()}
        role = folded.get(str(data["role"]).casefold())
        name = getattr(role, "template", None) if role is not None else None
    return templates.get(str(name)) if name else None


def _user(
    data: Mapping[str, Any], templates: Mapping[str, Any], roles: Mapping[str, Any]
) -> dict[str, Any]:
    out = dict(data)
    first, last = out.get("first_name", ""), out.get("last_name", "")
    if is_empty(out.get("directory_name")):
        out["directory_name"] = f"{last}, {first}"
    t = _template_of(data, templates, roles)
    if t is not None and is_empty(out.get("template")):
        # A user's template comes from its role when it names none: "role Agent"
        # and "role Agent, template Basic" (what the elements hold) are one record.
        out["template"] = t.name
    labels = [p.label for p in t.phones] if t is not None else []
    devices = [p.device_type for p in t.phones] if t is not None else []
    t_cos = periods(t.cos) if t is not None and t.cos is not None else None
    t_cor = periods(t.cor) if t is not None and t.cor is not None else None
    services = []
    for i, s in enumerate(data.get("services") or []):
        svc = dict(s)
        if is_empty(svc.get("label")):
            svc["label"] = labels[i] if i < len(labels) else f"Phone {i + 1}"
        if is_empty(svc.get("device_type")):
            svc["device_type"] = devices[i] if i < len(devices) else "generic"
        svc["cos"] = periods(svc.get("cos")) or t_cos
        svc["cor"] = periods(svc.get("cor")) or t_cor
        services.append(svc)
    out["services"] = services
    return out


def canonical(
    kind: str,
    data: Mapping[str, Any],
    templates: Mapping[str, Any] | None = None,
    roles: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A resource in YAML shape (defaults may be left out) -> its one canonical record.

    `templates`/`roles` (name -> model) give what a user inherits; without them a
    user's services are compared as written.
    """
    filled = _user(data, templates or {}, roles or {}) if kind == "users" else data
    result = normal(filled)
    assert isinstance(result, dict)
    return result
