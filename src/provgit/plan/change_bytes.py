"""`canonical` of a planned modify or delete, built from its changes as given.

A template edit leaves ~50,000 updates in a plan at 100,000 users. Through
`Operation.to_json` each one's changes are copied field by field through
`redact` (a Python call per value that is not a plain scalar: a user's
services list, its dicts) only to be serialized as they were. Here the changes
are serialized once (orjson, sorted keys); when those bytes hold no secret's
marker key they are what `redact` would have shown, and are used as they are;
else each change is serialized on its own and only those holding it redacted.
The bytes are exactly those of `canonical(op.to_json())`
(tests/plan/test_change_bytes.py compares them); an operation with a value
orjson cannot write with sorted keys returns None and goes the general way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from provgit.plan.add_bytes import MARKER, SORTED, Names
from provgit.secrets import PLAIN, SENSITIVE, redact

if TYPE_CHECKING:
    from provgit.plan.model import Operation

# The keys of `Operation.to_json`, in sorted order, with what sits between
# them; claim, depends_on, fields and managed only when set.
_ACTION = b'{"action":'
_CHANGES = b',"changes":'
_CLAIM = b',"claim":true'
_COLLECTION = b',"collection":'
_DEPENDS_ON = b',"depends_on":'
_FIELDS = b',"fields":'
_IF_REVISION = b',"if_revision":'
_KEY = b',"key":'
_KIND = b',"kind":'
_MANAGED = b',"managed":'
_RESOURCE = b',"resource":'


class ChangeWriter:
    """Serializes the modifies and deletes of one plan (its few labels:
    actions, collections, kinds, are made once)."""

    def __init__(self) -> None:
        self._labels: dict[str, bytes] = {}
        self._names = Names()

    def _label(self, s: str) -> bytes:
        made = self._labels.get(s)
        if made is None:
            made = self._labels[s] = orjson.dumps(s)
        return made

    def _shown(self, delta: dict[str, Any]) -> bytes | None:
        """`canonical` of `Operation.shown_changes`: each change serialized on
        its own, redacted as that method does only when its bytes hold the
        marker (a PIN changed: 19,811 of a template edit's 49,781 updates)."""
        names, dumps = self._names, orjson.dumps
        parts = []
        for name in sorted(delta):
            if type(name) is not str:
                return None
            c = delta[name]
            data = dumps(c, option=SORTED)
            if MARKER in data:
                shown = (
                    {a: v if type(v) in PLAIN else redact(v) for a, v in c.items()}
                    if type(c) is dict and SENSITIVE not in c
                    else redact(c)
                )
                data = dumps(shown, option=SORTED)
            parts.append(names[name] + data)
        return b"{" + b",".join(parts) + b"}"

    def change(self, op: Operation) -> bytes | None:
        """`canonical(op.to_json())`, or None when `op` has no changes as
        given (an add planned here)."""
        delta = op.delta
        if delta is None:
            return None
        dumps = orjson.dumps
        try:
            given = dumps(delta, option=SORTED)
            changes = self._shown(delta) if MARKER in given else given
            if changes is None:
                return None
            return b"".join(
                (
                    _ACTION,
                    self._label(op.action),
                    _CHANGES,
                    changes,
                    _CLAIM if op.claim else b"",
                    _COLLECTION,
                    self._label(op.collection),
                    _DEPENDS_ON + dumps(op.depends_on) if op.depends_on else b"",
                    b"" if op.fields is None else _FIELDS + dumps(op.fields, option=SORTED),
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
        except TypeError:  # e.g. a non-string key in a nested dict: the general way
            return None
