"""The `ldap` driver's write helpers: provgit's ownership mark, the assertion
control of conditional writes, finding an entry by its login, and what a
refused write means (kept apart so provgit.drivers.ldap stays one file)."""

from __future__ import annotations

import ldap3
from ldap3.operation.search import compile_filter, parse_filter
from pyasn1.codec.ber import encoder as ber  # ldap3's own ASN.1 library

from provgit.drivers.ldap_errors import error_of
from provgit.drivers.ldap_names import filter_value
from provgit.records import MANAGED_BY_VALUE
from provgit.wire.codec import element_text
from provgit.wire.protocol import (
    ConflictError,
    ElementError,
    NotFoundError,
    Refusal,
    RefusedError,
)

USERS = "users"
FORM = "User and Services (IDS entry)"
# provgit's ownership mark on an entry (a `description` value).
MARKER_ATTRIBUTE = "description"
MARKER = f"managed-by={MANAGED_BY_VALUE}"
MARKER_BYTES = MARKER.encode()
ASSERTION_OID = "1.3.6.1.1.12"


def assertion(filter_text: str) -> tuple[str, bool, bytes]:
    node = parse_filter(filter_text, None, True, True, None, False)
    return (ASSERTION_OID, True, ber.encode(compile_filter(node.elements[0])))


def lookup(conn: ldap3.Connection, name: str, base: str, login: str, key: str) -> str | None:
    """The DN of the one entry of the OU whose login is `key`, if any."""
    flt = f"({login}={filter_value(key)})"
    if not conn.search(base, flt, ldap3.LEVEL, attributes=["1.1"]):
        return None
    dns = [str(e["dn"]) for e in conn.response or [] if e.get("type") == "searchResEntry"]
    if len(dns) > 1:
        raise ConflictError(
            f"element {name}: {len(dns)} entries of {base!r} have the login "
            f"{key!r} ({'; '.join(sorted(dns))}); keep one in the directory",
            collection=USERS,
            key=key,
        )
    return dns[0] if dns else None


def owned(conn: ldap3.Connection, dn: str) -> bool:
    flt = f"({MARKER_ATTRIBUTE}={filter_value(MARKER)})"
    return bool(conn.search(dn, flt, ldap3.BASE, attributes=["1.1"]) and conn.response)


def write_error(conn: ldap3.Connection, name: str, dn: str, key: str) -> ElementError:
    code = conn.result.get("result")
    if code == 122:  # assertionFailed
        if not owned(conn, dn):
            return ConflictError(
                f"element {name}: {dn} is not managed by provgit (no "
                f"{MARKER_ATTRIBUTE}: {MARKER}); provgit does not change it "
                "(`provgit plan --claim` plans taking ownership of it)",
                collection=USERS,
                key=key,
                unowned=True,
            )
        return ConflictError(
            f"element {name}: {dn} was changed by another user in the directory "
            "since it was read; refresh",
            collection=USERS,
            key=key,
        )
    if code == 32:
        return NotFoundError(f"element {name}: {dn} does not exist", collection=USERS, key=key)
    if code in (17, 18, 19, 21, 34, 64, 65, 67, 69):
        reason = element_text(conn.result.get("message") or conn.result.get("description"))
        return RefusedError(
            f"element {name}: the directory refused {dn}: {reason}",
            [Refusal(FORM, None, reason)],
        )
    return error_of(name, conn.result)
