"""`canonical` of a planned add, built straight from its fields.

A first rollout's plan is hundreds of thousands of adds. Going through
`Operation.to_json` builds a dict per operation and a `{"after": v}` dict per
field (about three million at 100,000 users), then orjson walks and sorts them
all and Python frees them: most of a signed plan's CPU. Here the add's
`fields` are the record serialized in one call (orjson, sorted keys), and
its `changes` in a second one, of `{name: {"after": value}}` of the shown
fields (a record with a secret in it: each shown value on its own, redacted
if it must be). A call per field, fewer dicts but more Python per field, was
~15 % slower.
The bytes are exactly those of `canonical(op.to_json())`
(tests/plan/test_add_bytes.py compares them on a generated network and on
hostile values); any operation this does not cover (not a plain add, a value
orjson cannot write with sorted keys) returns None and goes the general way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from provgit.secrets import PLAIN, SENSITIVE, redact

if TYPE_CHECKING:
    from provgit.plan.model import Operation

SORTED = orjson.OPT_SORT_KEYS
# How a secret's marker key appears in serialized bytes: a value whose bytes
# do not hold it has no secret in it, and is shown as it is written (redact
# would return an equal copy). A string that merely contains it is redacted
# the long way, which is still exact.
MARKER = orjson.dumps(SENSITIVE) + b":"
# The keys of an add's JSON object (`Operation.to_json`), in sorted order,
# with what sits between them; claim, depends_on and managed only when set.
_HEAD = b'{"action":"add","changes":'
_CLAIM = b',"claim":true,"collection":'
_COLLECTION = b',"collection":'
_DEPENDS_ON = b',"depends_on":'
_FIELDS = b',"fields":'
_MANAGED = b',"managed":'
_IF_REVISION = b',"if_revision":'
_KEY = b',"key":'
_KIND = b',"kind":'
_RESOURCE = b',"resource":'


class Names(dict[str, bytes]):
    """A field name's `"name":` bytes, made once per name."""

    def __missing__(self, name: str) -> bytes:
        made = orjson.dumps(name) + b":"
        self[name] = made
        return made


class _Afters(dict[str, bytes]):
    """A field name's `"name":{"after":` bytes (its entry in `changes`)."""

    def __missing__(self, name: str) -> bytes:
        made = orjson.dumps(name) + b':{"after":'
        self[name] = made
        return made


class AddWriter:
    """Serializes the adds of one plan (its caches of field names live as long
    as it does)."""

    def __init__(self) -> None:
        self._afters = _Afters()
        # Collections and kinds only: a handful of names (values are not
        # kept, so what this holds does not grow with the plan).
        self._labels: dict[str, bytes] = {}

    def _label(self, s: str) -> bytes:
        made = self._labels.get(s)
        if made is None:
            made = self._labels[s] = orjson.dumps(s)
        return made

    def add(self, op: Operation) -> bytes | None:
        """`canonical(op.to_json())`, or None when `op` is not a plain add."""
        fields = op.fields
        if op.delta is not None or op.action != "add" or fields is None:
            return None
        try:
            return self._add(op, fields)
        except TypeError:  # e.g. a non-string key in a nested dict: the general way
            return None

    def _shown(self, fields: dict[str, Any]) -> list[bytes]:
        """Each shown field's entry in an add's `changes`, secrets redacted."""
        afters, dumps = self._afters, orjson.dumps
        shown: list[bytes] = []
        for name in sorted(fields):
            value = fields[name]
            if name[0] == "_" or value is None:
                continue
            data = dumps(value, option=SORTED)
            if type(value) not in PLAIN and MARKER in data:
                data = dumps(redact(value), option=SORTED)
            shown.append(afters[name] + data + b"}")
        return shown

    def _add(self, op: Operation, fields: dict[str, Any]) -> bytes | None:
        dumps = orjson.dumps
        # The add's `fields` are the record's own bytes, in one call (a key
        # that is not a string raises TypeError: the general way).
        written = dumps(fields, option=SORTED)
        if MARKER in written:  # a secret somewhere (or a string naming its marker)
            changes = b"{" + b",".join(self._shown(fields)) + b"}"
        else:  # nothing to redact: the shown values as they are, in one call
            changes = dumps(
                {k: {"after": v} for k, v in fields.items() if k[0] != "_" and v is not None},
                option=SORTED,
            )
        return b"".join(
            (
                _HEAD,
                changes,
                _CLAIM if op.claim else _COLLECTION,
                self._label(op.collection),
                _DEPENDS_ON + dumps(op.depends_on) if op.depends_on else b"",
                _FIELDS,
                written,
                _IF_REVISION,
                dumps(op.if_revision),
                _KEY,
                dumps(op.key),
                _KIND,
                self._label(op.kind),
                b"" if op.managed is None else _MANAGED + dumps(op.managed),
                _RESOURCE,
                dumps(op.resource),
                b"}",
            )
        )
