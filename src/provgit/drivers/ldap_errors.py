"""What the ldap driver makes of LDAP results and raw attribute values
(kept apart so provgit.drivers.ldap stays one screenful of driver)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provgit.wire.codec import element_text
from provgit.wire.protocol import (
    ElementError,
    LockedError,
    OfflineError,
    TransportError,
    UnauthorizedError,
)


def text_of(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def lowered(attrs: Mapping[str, Any]) -> dict[str, list[str]]:
    return {
        k.lower(): [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in vs]
        for k, vs in attrs.items()
    }


def error_of(name: str, result: Mapping[str, Any]) -> ElementError:
    code = result.get("result")
    # The directory's words reach the admin's terminal: one bounded line, no escapes.
    said = element_text(f"{result.get('description')} ({code}): {result.get('message') or ''}")
    text = f"element {name}: {said}"
    if code == 49:
        return UnauthorizedError(text.strip())
    if code == 51:
        return LockedError(text.strip())
    if code in (52, 53):
        return OfflineError(text.strip())
    return TransportError(text.strip())
