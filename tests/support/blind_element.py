"""A hostile element in front of a real simulator: every request goes to the
simulator and its answer back until a write has passed; from then on the
element will not let provgit check what it kept:

  feed500  the change feed answers HTTP 500 (and the listing still works)
  cursor   a record listing answers the first page with the same next_cursor
           every time (a listing that never ends)
  endless  (from the first write asked, answered or not) the change feed
           answers one more change, and more to come, every time it is asked

    python tests/support/blind_element.py SIMULATOR_URL MODE

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


async def main(upstream: str, mode: str) -> None:
    session = aiohttp.ClientSession()
    written = False

    async def handle(request: web.Request) -> web.StreamResponse:
        nonlocal written
        listing = request.method == "GET" and request.path.endswith("/records")
        if written and mode == "feed500" and request.path.endswith("/changes"):
            return web.json_response({"code": "error", "message": "feed broken"}, status=500)
        if mode == "endless" and request.method in ("PUT", "POST", "DELETE"):
            written = True
        if written and mode == "endless" and request.path.endswith("/changes"):
            since = int(request.rel_url.query.get("since", "0"))
            change = {"revision": since + 1, "collection": "users", "key": "nobody"}
            change.update(op="delete", record_revision=since + 1)
            return web.json_response({"changes": [change], "revision": since + 1, "more": True})
        query = request.rel_url.query.copy()
        if written and mode == "cursor" and listing:
            query.pop("cursor", None)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with session.request(
            request.method, upstream + request.rel_url.path, params=query, headers=headers,
            data=await request.read(),
        ) as answer:  # fmt: skip
            body = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP}
            if request.method in ("PUT", "POST", "DELETE") and answer.status < 300:
                written = True
            elif written and mode == "cursor" and listing and answer.status == 200:
                page = json.loads(body)
                page["next_cursor"] = "again"
                body = json.dumps(page).encode()
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
    asyncio.run(main(sys.argv[1], sys.argv[2]))
