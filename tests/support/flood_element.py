"""A hostile element in front of a real simulator: every request goes to
the simulator and its answer back, except the change feed, which answers
MIB mebibytes of a JSON array that never closes (an element that floods).

    python tests/support/flood_element.py SIMULATOR_URL MIB

Prints "listening on http://127.0.0.1:PORT" once serving; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp
from aiohttp import web
from element_proxy import forward, serve

CHUNK = b'{"revision": 1, "collection": "users", "key": "x", "op": "delete"},' * 16384


async def main(upstream: str, mib: int) -> None:
    async def handle(request: web.Request, session: aiohttp.ClientSession) -> web.StreamResponse:
        if request.method == "GET" and request.path.endswith("/changes"):
            out = web.StreamResponse(headers={"Content-Type": "application/json"})
            await out.prepare(request)
            await out.write(b'{"more": false, "revision": 1, "changes": [')
            sent = 0
            while sent < mib * 2**20:
                await out.write(CHUNK)
                sent += len(CHUNK)
            return out
        status, body, headers = await forward(session, upstream, request)
        return web.Response(status=status, body=body, headers=headers)

    await serve(handle)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
