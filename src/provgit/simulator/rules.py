"""The element's own refusal rules that need nothing but the record itself.

Rules that need the rest of the element (DN uniqueness, COS existence) live in
the store, which has the indexes for them. Every refusal names the admin form,
the field and a reason in the words an element's admin would see.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from provgit.records import COLLECTIONS, MIVB, Fields, form_name
from provgit.wire.protocol import Refusal
from provgit.wire.sensitive import SENSITIVE

MAX_STRING = 255
MAX_COS_COMMENT = 15
MAX_DIRECTORY_NAME = 21
COS_RANGE = (1, 110)
COR_GROUP_RANGE = (1, 64)
# Service fields naming a Class of Service on a call server.
COS_FIELDS = ("cos_day", "cos_night1", "cos_night2")
# A quote and then more than MAX_STRING bytes before the next one
# (_may_be_long): every string's piece starts after its opening quote, and
# starting the pattern with the quote lets the search skip to the quotes
# (the unanchored `[^"]{256}` was tried from every byte: ~3x slower).
_LONG_PIECE = re.compile(b'"[^"]{%d}' % (MAX_STRING + 1))


def check_collection(element_type: str, collection: str) -> Refusal | None:
    if collection in COLLECTIONS.get(element_type, {}):
        return None
    return Refusal(
        form=collection,
        field=None,
        reason=f"This {element_type} element has no form for collection {collection!r}",
    )


def _int_key(key: str) -> int | None:
    return int(key) if key.isascii() and key.isdigit() else None


def check_record(
    element_type: str,
    collection: str,
    key: str,
    fields: Fields,
    *,
    secrets: dict[str, Any] | None = None,
    encoded: bytes | None = None,
    form: str | None = None,
    long_names: list[str] | None = None,
) -> list[Refusal]:
    """Range and length rules for one record (fields as sent, secrets included).

    The store's bulk path passes what it has already: the plaintexts by path
    (`split_secrets`), so the passcodes need no walk of their own, and the
    fields as JSON, which rules out long strings for most records at C speed,
    the form name it has looked up once and the over-long directory names its
    one walk of the services found (`walk`).
    """
    form = form_name(element_type, collection) if form is None else form
    out: list[Refusal] = []
    if collection == "cos":
        n = _int_key(key)
        if n is None or not COS_RANGE[0] <= n <= COS_RANGE[1]:
            out.append(Refusal(form, "number", f"Class of Service number {key!r} is not 1-110"))
        comment = fields.get("comment")
        if isinstance(comment, str) and len(comment) > MAX_COS_COMMENT:
            out.append(
                Refusal(form, "comment", f"Comment is longer than {MAX_COS_COMMENT} characters")
            )
    elif collection == "cor_groups":
        n = _int_key(key)
        if n is None or not COR_GROUP_RANGE[0] <= n <= COR_GROUP_RANGE[1]:
            out.append(Refusal(form, "number", f"COR group number {key!r} is not 1-64"))
    for name in _directory_name_fields(fields) if long_names is None else long_names:
        out.append(
            Refusal(form, name, f"Directory name is longer than {MAX_DIRECTORY_NAME} characters")
        )
    # The paths are built only for a record that has a long string (few do:
    # building one per value was a tenth of a bulk write).
    maybe_long = _any_long_string(fields) if encoded is None else _may_be_long(encoded)
    for path, length in _long_strings(fields, "") if maybe_long else ():
        # The length, never the value: it may be a secret.
        out.append(Refusal(form, path, f"Value is {length} characters, at most {MAX_STRING}"))
    if len(key) > MAX_STRING:
        out.append(Refusal(form, "key", f"Key is {len(key)} characters, at most {MAX_STRING}"))
    if secrets is None:
        passcodes: Iterable[tuple[str, str]] = _trivial_passcodes(fields, "")
    else:
        passcodes = _trivial(secrets) if secrets else ()
    for path, value in passcodes:
        # Quoted on purpose: some real elements echo what they refuse, and
        # provgit must keep such an echo of a secret out of everything it writes.
        out.append(Refusal(form, path, f"Passcode {value} is too simple (all one digit)"))
    return out


def _trivial(secrets: dict[str, Any]) -> Iterator[tuple[str, str]]:
    # split_secrets' paths are the ones _trivial_passcodes builds, in its order.
    for path, secret in secrets.items():
        trivial = isinstance(secret, str) and len(secret) > 1 and len(set(secret)) == 1
        if trivial and secret.isdigit():
            yield path, secret


def _may_be_long(encoded: bytes) -> bool:
    """False when no string in this JSON can be over MAX_STRING characters: a
    string's bytes are at least its characters, and without an escaped quote
    each string is one piece between quotes."""
    if len(encoded) <= MAX_STRING:
        return False
    if b'\\"' in encoded:
        return True
    # A C scan, no piece allocated, linear: each byte is looked at from the
    # quote before it only.
    return _LONG_PIECE.search(encoded) is not None


def _trivial_passcodes(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        secret = value.get("value")
        if SENSITIVE in value and isinstance(secret, str):
            if len(secret) > 1 and secret.isdigit() and len(set(secret)) == 1:
                yield path, secret
            return
        for k, v in value.items():
            yield from _trivial_passcodes(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _trivial_passcodes(v, f"{path}[{i}]")


def _directory_name_fields(fields: Fields) -> Iterator[str]:
    dn_name = fields.get("directory_name")
    if isinstance(dn_name, str) and len(dn_name) > MAX_DIRECTORY_NAME:
        yield "directory_name"
    for i, item in enumerate(_services(fields)):
        value = item.get("directory_name")
        if isinstance(value, str) and len(value) > MAX_DIRECTORY_NAME:
            yield f"services[{i}].directory_name"


def _any_long_string(value: Any) -> bool:
    """Whether `_long_strings` finds anything (plain loops, no paths)."""
    if isinstance(value, str):
        return len(value) > MAX_STRING
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return False
    for v in value:
        t = type(v)
        if t is str:
            if len(v) > MAX_STRING:
                return True
        elif t is not int and t is not bool and v is not None and _any_long_string(v):
            return True
    return False


def _long_strings(value: Any, path: str) -> Iterator[tuple[str, int]]:
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            yield path or "value", len(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _long_strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _long_strings(v, f"{path}[{i}]")


def _services(fields: Fields) -> list[dict[str, Any]]:
    services = fields.get("services")
    if not isinstance(services, list):
        return []
    return [s for s in services if isinstance(s, dict)]


def directory_numbers(fields: Fields) -> list[tuple[str, str]]:
    """(field path, DN) for every DN a record uses: top-level `dn` and services' `dn`."""
    out: list[tuple[str, str]] = []
    dn = fields.get("dn")
    if isinstance(dn, str):
        out.append(("dn", dn))
    for i, item in enumerate(_services(fields)):
        value = item.get("dn")
        if isinstance(value, str):
            out.append((f"services[{i}].dn", value))
    return out


def walk(
    element_type: str, fields: Fields
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """directory_numbers, cos_references and the over-long directory names
    (check_record's `long_names`) in one pass over the services: the bulk
    path walked every record's services three times."""
    dns: list[tuple[str, str]] = []
    cos: list[tuple[str, str]] = []
    names: list[str] = []
    dn = fields.get("dn")
    if isinstance(dn, str):
        dns.append(("dn", dn))
    dn_name = fields.get("directory_name")
    if isinstance(dn_name, str) and len(dn_name) > MAX_DIRECTORY_NAME:
        names.append("directory_name")
    services = fields.get("services")
    if not isinstance(services, list):
        return dns, cos, names
    mivb = element_type == MIVB
    # As _services: the paths count the services that are objects.
    i = -1
    for item in services:
        if type(item) is not dict and not isinstance(item, dict):
            continue
        i += 1
        value = item.get("dn")
        if isinstance(value, str):
            dns.append((f"services[{i}].dn", value))
        value = item.get("directory_name")
        if isinstance(value, str) and len(value) > MAX_DIRECTORY_NAME:
            names.append(f"services[{i}].directory_name")
        if mivb:
            for name in COS_FIELDS:
                value = item.get(name)
                if type(value) is str:
                    cos.append((f"services[{i}].{name}", value))
                elif isinstance(value, int | str) and not isinstance(value, bool):
                    cos.append((f"services[{i}].{name}", str(value)))
    return dns, cos, names


def cos_references(element_type: str, fields: Fields) -> list[tuple[str, str]]:
    """(field path, COS number) a record's services name; only call servers check them."""
    if element_type != MIVB:
        return []
    out: list[tuple[str, str]] = []
    for i, item in enumerate(_services(fields)):
        for name in COS_FIELDS:
            value = item.get(name)
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int | str):
                out.append((f"services[{i}].{name}", str(value)))
    return out


def altered(fields: Fields) -> Fields:
    """What a lying element (fault `lie: alter`) stores of a put it answers as
    done: its first text field (by name) changed."""
    for name in sorted(fields):
        if not name.startswith("_") and isinstance(fields[name], str):
            return {**fields, name: fields[name] + "~"}
    return {**fields, "_altered": True}
