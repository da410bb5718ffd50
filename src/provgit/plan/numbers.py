"""The numbers a network dials, and the spare a number swap may park a user on.

A swap's spare DN (plan/swaps.py) must ring no one else, however briefly. So
it is none of the numbers any record names, in the config or as observed on
any element of the network (an element holds numbers the config does not
have: records provgit did not create, a number another element holds rings
across the cluster): a user's phone services, a remote directory entry, a
directory entry's telephone numbers, an IVR's transfer targets, and any key
that is a number. Nor may it clash in a dial plan: a call server's digit
analysis matches the shortest complete number, so a spare one of them starts
with (3000 when 300 is taken: 3000 is never reached) or that starts one of
them (300 when 3000 is taken: 3000 is cut short) is taken too. Emergency and
public-service numbers are never spares, nor their prefixes and extensions.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

SPARE_DN = re.compile(r"^[0-9*#]{1,7}$")
# What a number field may hold to be dialled: digits, * and # (an IVR's
# transfer target is up to 32 of them).
_DIALABLE = re.compile(r"^[0-9*#]{1,32}$")
# Fields naming a number, whatever the record (a phone service's `dn`, a
# directory entry's `primary_dn`/`secondary_dn`/`mobile`, a pilot number).
_NUMBER_FIELDS = frozenset({"dn", "mobile", "pilot", "pilot_number", "telephone_number"})

# Emergency and public-service numbers (112, 911, 999, 000, ...). The highest
# free number is often 999 or 9999: a user put on one for a swap, however
# briefly, could take the calls a call server's digit analysis routes there.
_NEVER_SPARE = (
    "000", "08", "100", "101", "102", "108", "110", "111", "112", "117",
    "118", "119", "15", "17", "18", "190", "192", "193", "911", "999",
)  # fmt: skip


def spare_allowed(dn: str) -> bool:
    """A DN a swap may park a user on: a valid one, neither an emergency
    number, nor starting one, nor starting with one."""
    return (
        bool(SPARE_DN.match(dn))
        and not dn.startswith(_NEVER_SPARE)
        and not any(e.startswith(dn) for e in _NEVER_SPARE)
    )


def _number_field(name: str) -> bool:
    return name in _NUMBER_FIELDS or name.endswith(("_dn", "_number"))


# Field name -> what it is: 0 bookkeeping (skipped), 1 a number, 2 anything
# else. Bounded: an element's records may carry any names.
_SEEN: dict[str, int] = {}
_SEEN_MAX = 4096


def _field_kind(name: str) -> int:
    kind = _SEEN.get(name)
    if kind is None:
        kind = 0 if name.startswith("_") else 1 if _number_field(name) else 2
        if len(_SEEN) < _SEEN_MAX:
            _SEEN[name] = kind
    return kind


def _add(value: Any, out: set[str]) -> None:
    t = type(value)
    if t is str:
        if _DIALABLE.match(value):
            out.add(value)
    elif t is int:
        out.add(str(value))


def _collect(fields: Mapping[str, Any], out: set[str]) -> None:
    """Every number a record's fields name, at any depth, into `out`: number
    fields, an IVR step's transfer target and its menu's `transfer:NUMBER`
    choices. (One pass in plain loops: a spare reads every record there is.)"""
    transfer = fields.get("action") == "transfer"
    for name, value in fields.items():
        kind = _field_kind(name) if type(name) is str else 0
        if kind == 0:
            continue
        if kind == 1 or (transfer and name == "target"):
            _add(value, out)
            continue
        t = type(value)
        if t is list:
            _collect_list(value, out)
        elif t is dict or (t is not str and isinstance(value, Mapping)):
            if name == "choices":
                for choice in value.values():
                    if isinstance(choice, str) and choice.startswith("transfer:"):
                        _add(choice[9:], out)
            else:
                _collect(value, out)


def _collect_list(items: list[Any], out: set[str]) -> None:
    for item in items:
        if type(item) is dict or isinstance(item, Mapping):
            _collect(item, out)
        elif type(item) is list:
            _collect_list(item, out)


def numbers_in(fields: Mapping[str, Any]) -> set[str]:
    """Every number a record's fields name (see `_collect`)."""
    out: set[str] = set()
    _collect(fields, out)
    return out


def numbers_held(collections: Iterable[Mapping[str, Mapping[str, Any]]]) -> set[str]:
    """Every number in `collections` (each collection -> key -> fields, or a
    stored record): what its records' fields name, and each key that is one."""
    out: set[str] = set()
    dialable = _DIALABLE.match
    for by_collection in collections:
        for records in by_collection.values():
            for key, record in records.items():
                if dialable(key):
                    out.add(key)
                fields = record if type(record) is dict else getattr(record, "fields", record)
                if isinstance(fields, Mapping):
                    _collect(fields, out)
    return out


def numbers_apart(
    collections: Iterable[Mapping[str, Mapping[str, Any]]], owners: Collection[str]
) -> tuple[set[str], dict[str, set[str]]]:
    """`numbers_held`, with the numbers of `owners`' records (users, by key or
    `login_id`, their remote directory entries too) apart: those of every
    other record, and each owner's own."""
    rest: set[str] = set()
    owned: dict[str, set[str]] = {o: set() for o in owners}
    dialable = _DIALABLE.match
    for by_collection in collections:
        for collection, records in by_collection.items():
            for key, record in records.items():
                fields = record if type(record) is dict else getattr(record, "fields", record)
                login = fields.get("login_id") if isinstance(fields, Mapping) else None
                out = owned.get(key) if collection == "users" else None
                if out is None and isinstance(login, str):
                    out = owned.get(login)
                if out is None:
                    out = rest
                if dialable(key):
                    out.add(key)
                if isinstance(fields, Mapping):
                    _collect(fields, out)
    return rest, owned


class Taken:
    """Numbers in use, and whether a spare would clash with one of them in
    a dial plan (equal, a prefix of one, or one is a prefix of it)."""

    def __init__(self, numbers: Iterable[str] = ()) -> None:
        self.numbers: set[str] = set()
        self._starts: set[str] = set()  # every proper prefix of a number
        for n in numbers:
            self.add(n)

    def add(self, number: str) -> None:
        if number not in self.numbers:
            self.numbers.add(number)
            self._starts.update(number[:i] for i in range(1, len(number)))

    def clashes(self, dn: str) -> bool:
        return (
            dn in self.numbers
            or dn in self._starts
            or any(dn[:i] in self.numbers for i in range(1, len(dn)))
        )

    def clash(self, dn: str) -> str | None:
        """The number `dn` would clash with, if any (the lowest)."""
        if not self.clashes(dn):
            return None
        return min(n for n in self.numbers if n.startswith(dn) or dn.startswith(n))


def free_dn(dn: str, used: Iterable[str] | Taken) -> str:
    """The highest number of `dn`'s length (else of 7 digits) that clashes
    with nothing in `used`, neither an emergency number nor close to one."""
    taken = used if isinstance(used, Taken) else Taken(used)
    lengths = [len(dn)] if dn.isdigit() and 1 <= len(dn) <= 7 else []
    for length in [*lengths, 7]:
        for n in range(10**length - 1, 10 ** (length - 1) - 1, -1):
            spare = str(n)
            if spare_allowed(spare) and not taken.clashes(spare):
                return spare
    raise ValueError("no spare directory number is free")
