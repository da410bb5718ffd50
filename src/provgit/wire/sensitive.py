"""Secrets on the wire: `{"$sensitive": <fingerprint>, "value": <plaintext>}`.

A write carries a secret's plaintext beside its fingerprint; whatever is
stored, returned or compared keeps the fingerprint (and any non-secret
reference such as `ref`) and never the plaintext. The element (the simulator's
store) splits a write this way before storing it, and the http driver splits
records the same way to compare them as provgit does.
"""

from __future__ import annotations

from typing import Any

from provgit.records import Fields

SENSITIVE = "$sensitive"
# What is shown of a secret, wherever one would be.
SHOWN = "(sensitive)"


def any_sensitive(value: Any) -> bool:
    """Whether a value holds a `{"$sensitive": ...}` object anywhere."""
    if isinstance(value, dict):
        if SENSITIVE in value:
            return True
        value = value.values()
    elif not isinstance(value, list):
        return False
    for v in value:  # noqa: SIM110 (a loop: no generator per call on the write path)
        if isinstance(v, dict | list) and any_sensitive(v):
            return True
    return False


def split_secrets(fields: Fields) -> tuple[Fields, dict[str, Any]]:
    """Redact `{"$sensitive": fp, "value": v}` objects, wherever they are.

    Returns the fields as stored and returned (everything but the plaintext:
    the fingerprint and any non-secret reference such as `ref`) and the
    plaintexts by JSON path, kept apart so no read path can ever return them.
    """
    secrets: dict[str, Any] = {}
    if not any_sensitive(fields):
        # Most records hold no secret: a copy of the top level (the store adds
        # its own top-level fields to it; nested values are only serialized).
        return dict(fields), secrets

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            if SENSITIVE in value:
                if "value" in value:
                    secrets[path] = value["value"]
                return {k: v for k, v in value.items() if k != "value"}
            return {k: walk(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    redacted = {k: walk(v, k) for k, v in fields.items()}
    return redacted, secrets


def is_sensitive(value: Any) -> bool:
    return isinstance(value, dict) and SENSITIVE in value


# Values `redact` returns as they are without a call: nearly every field (a
# first rollout's plan redacts millions of them).
PLAIN = frozenset({str, int, float, bool, type(None)})


def redact(value: Any) -> Any:
    """What may be shown of a field value: secrets become "(sensitive)"."""
    if is_sensitive(value):
        return SHOWN
    if isinstance(value, dict):
        return {k: v if type(v) in PLAIN else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in PLAIN else redact(v) for v in value]
    return value
