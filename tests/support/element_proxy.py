"""What the hostile elements in this folder share: each stands in front of a
real simulator on 127.0.0.1, passes requests through (`forward`) and changes
some answers; `serve` runs one until SIGTERM.

A script here imports it as a sibling (`from element_proxy import ...`): it is
run as `python tests/support/NAME_element.py`, so its folder is on sys.path.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
from aiohttp import web

# Per connection, not per message: aiohttp sets its own.
HOP = {"content-length", "transfer-encoding", "connection", "content-encoding", "host"}

# A hostile element's answer to one request, given the session to the simulator.
Handler = Callable[[web.Request, aiohttp.ClientSession], Awaitable[web.StreamResponse]]


async def forward(
    session: aiohttp.ClientSession,
    upstream: str,
    request: web.Request,
    params: Mapping[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    """The simulator's answer to `request` (status, body, headers to pass on).
    `params`: the query to send instead of the request's own."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
    url = upstream + (request.rel_url.path if params is not None else request.rel_url.path_qs)
    async with session.request(
        request.method, url, params=params, headers=headers, data=await request.read()
    ) as answer:
        body = await answer.read()
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP}
        return answer.status, body, kept


async def serve(handle: Handler) -> None:
    """Serve `handle` on a free loopback port, print
    "listening on http://127.0.0.1:PORT", stop on SIGTERM."""
    session = aiohttp.ClientSession()

    async def each(request: web.Request) -> web.StreamResponse:
        return await handle(request, session)

    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_route("*", "/{tail:.*}", each)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.shutdown()
    await runner.cleanup()
    await session.close()
