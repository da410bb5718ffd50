"""A hostile element in front of a real simulator: every request goes to
the simulator and its answer back, except the change feed, which answers its
headers and then one byte every PERIOD seconds, each byte well inside any read
timeout, for at most LIMIT seconds (an element that trickles).

    python tests/support/trickle_element.py SIMULATOR_URL PERIOD LIMIT

Prints "listening on http://127.0.0.1:PORT" once serving and "trickling" each
time a feed answer starts; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp
from aiohttp import web
from element_proxy import forward, serve


async def main(upstream: str, period: float, limit: float) -> None:
    loop = asyncio.get_running_loop()

    async def handle(request: web.Request, session: aiohttp.ClientSession) -> web.StreamResponse:
        if request.method == "GET" and request.path.endswith("/changes"):
            out = web.StreamResponse(headers={"Content-Type": "application/json"})
            await out.prepare(request)
            print("trickling", flush=True)
            end = loop.time() + limit
            try:
                while loop.time() < end:
                    await out.write(b" ")  # JSON allows leading blanks: never garbled
                    await asyncio.sleep(period)
                await out.write(b'{"more": false, "revision": 0, "changes": []}')
            except ConnectionError:
                pass  # provgit hung up: what the test wants
            return out
        status, body, headers = await forward(session, upstream, request)
        return web.Response(status=status, body=body, headers=headers)

    await serve(handle)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3])))
