"""The simulator's Host check, against DNS rebinding (see provgit.wire.hosts).

On a loopback address it serves with no token: a web page whose name the
attacker re-points at 127.0.0.1 would be same-origin with it and could read
every record and, with --admin, reset the element. Its requests carry the
attacker's name as Host: refused (421) before the token, the faults or any
handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from provgit.wire.hosts import foreign_host

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def host_guard(hosts: frozenset[str] | None) -> Middleware:
    """A middleware answering 421 to a request whose Host is not among `hosts` (None: any)."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        shown = foreign_host(request.host, hosts)
        if shown is None:
            return await handler(request)
        message = (
            f"Host {shown} is not this element's name: use its address, "
            "or start it with --allowed-host NAME"
        )
        return web.json_response({"code": "misdirected", "message": message}, status=421)

    return guard
