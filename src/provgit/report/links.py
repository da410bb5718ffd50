"""Reach-through links: a record's page in its element's own admin form."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from string import Formatter
from urllib.parse import quote

# What quote(key, safe="") leaves as it is: a key of only these needs no
# quoting (nearly all of them: a status lists thousands of links).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


@lru_cache(maxsize=256)
def _quoted_form(form: str) -> str:
    return quote(form)


# A shared record (a role, a COS) is linked once per element that holds it:
# its key is quoted once, not 15 times (~3,600 of a status' 8,700 links).
@lru_cache(maxsize=4096)
def _quoted_key(key: str) -> str:
    return quote(key, safe="")


def reach_through(
    template: str | None, element: str, form: str, collection: str, key: str
) -> str | None:
    """A link into the element's own admin form for one record."""
    if not template:
        return None
    try:
        return template.format(
            element=element,
            form=_quoted_form(form),
            collection=collection,
            key=key if _UNRESERVED(key) else _quoted_key(key),
        )
    except (KeyError, IndexError, ValueError):
        return None


_FILLED = ("element", "form", "collection")


def link_maker(
    template: str | None, element: str, form: str, collection: str
) -> Callable[[str], str | None]:
    """`reach_through` for one element's form and collection, as a function of
    the key: a template of plain fields is parsed once, not formatted once per
    record (a status lists ~9,000 links). Any other template is formatted as
    `reach_through` does."""
    parts = _split_at_key(template, element, form, collection) if template else None
    if parts is None:
        return lambda key: reach_through(template, element, form, collection, key)

    def made(key: str) -> str:
        return (key if _UNRESERVED(key) else _quoted_key(key)).join(parts)

    return made


def _split_at_key(
    template: str, element: str, form: str, collection: str
) -> tuple[str, ...] | None:
    """The template with every field but `{key}` filled in, split where the key
    goes; None when a field has a conversion, a format spec, an index or
    another name (then `str.format` decides)."""
    values = {"element": element, "form": _quoted_form(form), "collection": collection}
    pieces: list[str] = []
    current: list[str] = []
    try:
        for literal, name, spec, conversion in Formatter().parse(template):
            current.append(literal)
            if name is None:
                continue
            if spec or conversion or (name != "key" and name not in _FILLED):
                return None
            if name == "key":
                pieces.append("".join(current))
                current = []
            else:
                current.append(values[name])
    except ValueError:  # an unmatched brace: format raises it too
        return None
    pieces.append("".join(current))
    return tuple(pieces)
