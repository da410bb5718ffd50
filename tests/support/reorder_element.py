"""A hostile element in front of a real simulator: every request goes to
the simulator and its answer back, except that the change feed's entries come
newest first (the API says oldest first) and the element's answer carries no
content digest (so nothing else tells provgit its copy is wrong).

    python tests/support/reorder_element.py SIMULATOR_URL

Prints "listening on http://127.0.0.1:PORT" once serving; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp
from aiohttp import web

HOP = {"content-length", "transfer-encoding", "connection", "content-encoding", "host"}


def _hostile(path: str, body: bytes) -> bytes:
    if path.endswith("/changes"):
        feed = json.loads(body)
        feed["changes"].reverse()
        return json.dumps(feed).encode()
    if path.endswith("/element"):
        info = json.loads(body)
        info.pop("digest", None)
        return json.dumps(info).encode()
    return body


async def main(upstream: str) -> None:
    session = aiohttp.ClientSession()

    async def handle(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with session.request(
            request.method, upstream + request.rel_url.path_qs, headers=headers,
            data=await request.read(),
        ) as answer:  # fmt: skip
            body = await answer.read()
            if request.method == "GET" and answer.status == 200:
                body = _hostile(request.path, body)
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
    asyncio.run(main(sys.argv[1]))
