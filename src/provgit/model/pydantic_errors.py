"""Pydantic's validation errors, said the way an admin editing YAML needs them."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from provgit.model.common import YAML11_BOOLEANS

_TYPE_NAMES = {
    "string_type": "text",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"{value!r} (a number)"
    if isinstance(value, str):
        return f"{value!r} (text)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model reached by `loc` (for 'did you mean')."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _inner_model(field.annotation)
    return list(getattr(current, "model_fields", {}))


def _inner_model(tp: Any) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in getattr(tp, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def explain(model: type[BaseModel], err: Any) -> tuple[tuple[Any, ...], str, str | None]:
    """(location path inside the record, message, hint) for one pydantic error."""
    # A mapping key of the wrong type (YAML reads `1:` as a number) is reported as
    # (..., field, key, "[key]"); say it is the key, not the field, that is wrong.
    is_key = bool(err["loc"]) and err["loc"][-1] == "[key]"
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    # Union members show up in loc as type names; they mean nothing to a YAML author.
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in _UNION_NOISE)))
    etype = err["type"]
    field = next((str(p) for p in reversed(loc) if isinstance(p, str)), "value")
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if "hint" in ctx and "message" in ctx:
        # Our own PydanticCustomError: the message and the hint, as written.
        return loc, str(ctx["message"]), str(ctx["hint"])
    if etype == "missing":
        return loc, f"missing required field '{field}'", f"add '{field}: …'"
    if etype == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(field, known, n=1)
        hint = (
            f"did you mean '{close[0]}'?"
            if close
            else (f"known fields: {', '.join(known)}" if known else None)
        )
        return loc, f"unknown field '{field}'", hint
    if etype in _TYPE_NAMES and is_key:
        parent = next((str(p) for p in reversed(loc[:-1]) if isinstance(p, str)), "mapping")
        return (
            loc,
            f"key {value!r} in '{parent}' must be {_TYPE_NAMES[etype]}, got {_describe(value)}",
            f'quote the key: "{value}": …' if etype == "string_type" else None,
        )
    if etype in _TYPE_NAMES:
        hint = _type_hint(etype, field, value)
        return loc, f"'{field}' must be {_TYPE_NAMES[etype]}, got {_describe(value)}", hint
    bound = _size_message(etype, field, value, ctx)
    if bound is not None:
        return loc, bound, None
    if etype == "string_pattern_mismatch":
        return (
            loc,
            f"'{field}' value {value!r} is not in the expected form",
            _PATTERN_HINTS.get(field),
        )
    if etype == "literal_error":
        return loc, f"'{field}' must be one of {ctx.get('expected')}, got {_describe(value)}", None
    if etype == "value_error":
        msg = str(ctx.get("error", err.get("msg", "")))
        # A validator that knows the fix raises provgit.model.common.Hinted.
        given = getattr(ctx.get("error"), "hint", None)
        if loc and field != "value":
            if _is_sentence(msg):
                return loc, msg, given
            sep = ":" if msg.startswith("use ") else ""
            return loc, f"'{field}'{sep} {msg}", given
        return loc, msg, given
    return loc, f"'{field}': {err.get('msg', 'invalid value')}", None


_UNION_NOISE = {"str", "int", "float", "bool", "list", "dict", "none"}

_PATTERN_HINTS = {
    "name": "use letters, digits, '.', '_' and '-' (start with a letter or digit)",
    "language": "use a language tag such as en-US or fr-CA",
    "email": "an email address looks like name@example.com",
    "env": "an environment variable name: letters, digits and _, not starting with a digit",
}


def _is_sentence(msg: str) -> bool:
    # Field validators say "must …"/"contains …" and need the field name in front.
    return not msg.startswith(("must ", "contains ", "cannot ", "use ", "is the text "))


def _type_hint(etype: str, field: str, value: Any) -> str | None:
    """How to write a value YAML read as the wrong type (quotes, a whole number, true/false)."""
    hint = None
    if etype == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        hint = f'quote it to keep it as text: {field}: "{value}"'
    if etype == "string_type" and isinstance(value, bool):
        hint = f'YAML reads this as a boolean; quote it: {field}: "{value}"'
    if etype == "int_type" and isinstance(value, float) and value.is_integer():
        hint = f"write a whole number, without the decimal point: {field}: {int(value)}"
    if etype == "bool_type" and isinstance(value, str):
        meant = YAML11_BOOLEANS.get(value, value.strip().lower() == "true")
        hint = (
            f"write {str(meant).lower()}; YAML 1.2 reads `{value}` as the string {value!r}"
            if value in YAML11_BOOLEANS
            else f"remove the quotes: {field}: {str(meant).lower()}"
            if value.strip().lower() in ("true", "false")
            else None
        )
    if etype == "int_type" and isinstance(value, str) and value.strip().isdigit():
        hint = f"remove the quotes: {field}: {value.strip()}"
    return hint


def _size_message(etype: str, field: str, value: Any, ctx: Mapping[str, Any]) -> str | None:
    """The message for a value too long, too short, too big or too small; None otherwise."""
    if etype == "string_too_long":
        n = len(value) if isinstance(value, str) else "?"
        return f"'{field}' is {n} characters long; the maximum is {ctx.get('max_length')}"
    if etype == "string_too_short":
        return f"'{field}' needs at least {ctx.get('min_length')} character(s)"
    if etype == "too_long":
        return (
            f"'{field}' has {ctx.get('actual_length')} items; at most {ctx.get('max_length')} "
            "are allowed"
        )
    if etype == "too_short":
        return f"'{field}' needs at least {ctx.get('min_length')} item(s)"
    if etype in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = {
            "greater_than_equal": f"at least {ctx.get('ge')}",
            "less_than_equal": f"at most {ctx.get('le')}",
            "greater_than": f"more than {ctx.get('gt')}",
            "less_than": f"less than {ctx.get('lt')}",
        }[etype]
        return f"'{field}' is {value!r}; it must be {bound}"
    return None
