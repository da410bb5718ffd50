"""Which Host names a server bound on loopback answers (against DNS rebinding).

A web page whose name the attacker re-points at 127.0.0.1 is same-origin with
a server there and may read (and, without a token, write) through it; its
requests carry the attacker's name in the Host header. The watch and fleet
status servers and the element simulator refuse such a request (421) when
bound on a loopback address, or whenever names are allowed (`--allowed-host`).
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name a Host header gives: lower case, without its port, brackets or final dot."""
    h = header.strip().lower()
    if h.startswith("["):
        h = h[1:].partition("]")[0]
    elif h.count(":") == 1:
        h = h.partition(":")[0]
    return h.rstrip(".")


def allowed_hosts(bound: str, allowed: tuple[str, ...]) -> frozenset[str] | None:
    """The Host names served (None: any): on a loopback address or with names allowed."""
    if not is_loopback(bound) and not allowed:
        return None
    return frozenset({"localhost", host_name(bound), *(host_name(a) for a in allowed)})


def foreign_host(header: str, names: frozenset[str] | None) -> str | None:
    """None when a request naming `header` may be served; else the name, as shown."""
    if names is None:
        return None
    name = host_name(header)
    if name in names or is_loopback(name):
        return None
    return repr(name[:80]) if name.isprintable() else "(not printable)"


def bad_host_name(name: str) -> bool:
    """Not a name as a browser sends it: empty, a scheme, path, user or wildcard."""
    return not name.strip() or any(c in name for c in "/@ *") or not name.isprintable()
