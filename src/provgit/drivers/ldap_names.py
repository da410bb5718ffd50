"""Names in the directory: a login as an RDN value (RFC 4514) and as a filter
value (RFC 4515), and whether a DN is an entry of provgit's OU.

A login reaches the directory inside a DN and inside search filters; both
have their own special characters, and an unescaped `,` or `=` in a DN names
another entry (`x,ou=other` would be `cn=x` under `ou=other`), an unescaped
`*` or `)` in a filter matches other entries. Every login goes through these
functions, and every DN provgit writes is checked to be one level under the
OU before anything is sent: validation already refuses commas, spaces,
control characters and backslashes in logins, but entries read from a
directory (import, claim) carry whatever the directory holds.
"""

from __future__ import annotations

from ldap3.utils.conv import escape_filter_chars

# RFC 4514 2.4: escaped anywhere in a value (NUL as hex, the others as `\c`).
_SPECIAL = frozenset('\\,+"<>;=')


def rdn_value(value: str) -> str:
    """`value` escaped as an attribute value of a DN (RFC 4514 section 2.4)."""
    out: list[str] = []
    last = len(value) - 1
    for i, c in enumerate(value):
        if c == "\0":
            out.append("\\00")
        elif c in _SPECIAL or (i == 0 and c in "# ") or (i == last and c == " "):
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def filter_value(value: str) -> str:
    """`value` escaped as an assertion value of a search filter (RFC 4515)."""
    return str(escape_filter_chars(value))


def rdns(dn: str) -> list[str]:
    """A DN's RDNs as written, split at the commas no backslash or quote escapes."""
    parts: list[str] = []
    current: list[str] = []
    escaped = quoted = False
    for c in dn:
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c in ",;" and not quoted:  # `;` is RFC 2253's older separator
            parts.append("".join(current))
            current = []
            continue
        current.append(c)
    parts.append("".join(current))
    return parts


def _same(a: str, b: str) -> bool:
    """Two RDNs alike as a directory compares its OU's names (types and values
    ignoring case and the spaces around them)."""
    ta, _, va = a.partition("=")
    tb, _, vb = b.partition("=")
    return ta.strip().lower() == tb.strip().lower() and va.strip().lower() == vb.strip().lower()


def is_child(dn: str, base: str) -> bool:
    """Whether `dn` names an entry exactly one level under `base` (one RDN,
    then base's RDNs): the only entries provgit ever writes."""
    got, want = rdns(dn), rdns(base)
    return len(got) == len(want) + 1 and "=" in got[0] and all(map(_same, got[1:], want))


def child_dn(attribute: str, value: str, base: str) -> str:
    """The DN of the entry `attribute=value` directly under `base`."""
    return f"{attribute}={rdn_value(value)},{base}"
