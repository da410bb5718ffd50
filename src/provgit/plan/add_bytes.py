"""`canonical` of a planned add, built straight from its fields.

A first rollout's plan is hundreds of thousands of adds. Going through
`Operation.to_json` builds a dict per operation, then orjson walks and sorts
it and Python frees it. Here an add is its record serialized in one call
(orjson, sorted keys) and a few fixed pieces around it. An add planned here
carries no `changes` (plan format 3): they are its fields (each visible one
as its "after", secrets shown as references), so they are not written twice
and nothing is redacted here (`fields` hold references and fingerprints,
never a secret's value).
The bytes are exactly those of `canonical(op.to_json())`
(tests/plan/test_add_bytes.py compares them on a generated network and on
hostile values); any operation this does not cover (not a plain add, a value
orjson cannot write with sorted keys) returns None and goes the general way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from provgit.secrets import SENSITIVE

if TYPE_CHECKING:
    from provgit.plan.model import Operation

SORTED = orjson.OPT_SORT_KEYS
# How a secret's marker key appears in serialized bytes: a value whose bytes
# do not hold it has no secret in it (change_bytes shows it as it is written).
MARKER = orjson.dumps(SENSITIVE) + b":"
# The keys of an add's JSON object (`Operation.to_json`), in sorted order,
# with what sits between them; claim, depends_on and managed only when set.
_HEAD = b'{"action":"add"'
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


class AddWriter:
    """Serializes the adds of one plan (its caches of field names live as long
    as it does)."""

    def __init__(self) -> None:
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
            # The add's `fields` are the record's own bytes, in one call (a
            # key that is not a string raises TypeError: the general way).
            written = orjson.dumps(fields, option=SORTED)
        except TypeError:
            return None
        dumps = orjson.dumps
        return b"".join(
            (
                _HEAD,
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
