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
import signal
import sys

import aiohttp
from aiohttp import web

HOP = {"content-length", "transfer-encoding", "connection", "content-encoding", "host"}


async def main(upstream: str, period: float, limit: float) -> None:
    session = aiohttp.ClientSession()
    loop = asyncio.get_running_loop()

    async def handle(request: web.Request) -> web.StreamResponse:
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
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.shutdown()
    await runner.cleanup()
    await session.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3])))
