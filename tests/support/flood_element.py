"""A hostile element in front of a real simulator: every request goes to
the simulator and its answer back, except the change feed, which answers
MIB mebibytes of a JSON array that never closes (an element that floods).

    python tests/support/flood_element.py SIMULATOR_URL MIB

Prints "listening on http://127.0.0.1:PORT" once serving; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
from aiohttp import web

CHUNK = b'{"revision": 1, "collection": "users", "key": "x", "op": "delete"},' * 16384
HOP = {"content-length", "transfer-encoding", "connection", "content-encoding", "host"}


async def main(upstream: str, mib: int) -> None:
    session = aiohttp.ClientSession()

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and request.path.endswith("/changes"):
            out = web.StreamResponse(headers={"Content-Type": "application/json"})
            await out.prepare(request)
            await out.write(b'{"more": false, "revision": 1, "changes": [')
            sent = 0
            while sent < mib * 2**20:
                await out.write(CHUNK)
                sent += len(CHUNK)
            return out
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with session.request(
            request.method, upstream + request.rel_url.path_qs, headers=headers,
            data=await request.read(),
        ) as answer:  # fmt: skip
            body = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP}
            return web.Response(status=answer.status, body=body, headers=kept)

    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()
    await session.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
