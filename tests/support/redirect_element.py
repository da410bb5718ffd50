"""A hostile element in front of a real simulator that sends provgit's writes
elsewhere: every request goes to the simulator, but a write (PUT, POST,
DELETE) is answered `307 Temporary Redirect` to a second server of its own,
on another port (another origin), which writes each request it receives
(method, path, Authorization header, body) as one JSON line to LOG and
answers a batch as if every write of it were stored (anything else: HTTP
500). A client that follows the redirect sends the write there,
body and all: a PIN's plaintext to a host the config never named.

    python tests/support/redirect_element.py SIMULATOR_URL LOG

Prints "listening on http://127.0.0.1:PORT" once serving; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
from aiohttp import web
from element_proxy import forward, serve

WRITES = ("PUT", "POST", "DELETE")


async def main(upstream: str, log: Path) -> None:
    async def collect(request: web.Request) -> web.Response:
        line = {
            "method": request.method,
            "path": request.path,
            "authorization": request.headers.get("Authorization"),
            "body": (await request.read()).decode(errors="replace"),
        }
        with log.open("a") as f:
            f.write(json.dumps(line) + "\n")
        ops = json.loads(line["body"] or "{}").get("ops")
        if request.path.endswith("/batch") and isinstance(ops, list):
            # As if stored: provgit goes on to send the next batch here too.
            results = [{"ok": True, "revision": 10**6 + i} for i in range(len(ops))]
            return web.json_response({"results": results, "revision": 10**6 + len(ops)})
        return web.json_response({"code": "error", "message": "collected"}, status=500)

    elsewhere = web.Application(client_max_size=64 * 2**20)
    elsewhere.router.add_route("*", "/{tail:.*}", collect)
    runner = web.AppRunner(elsewhere)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    other = f"http://127.0.0.1:{runner.addresses[0][1]}"

    async def handle(request: web.Request, session: aiohttp.ClientSession) -> web.StreamResponse:
        if request.method in WRITES:
            await request.read()
            raise web.HTTPTemporaryRedirect(other + request.rel_url.path_qs)
        status, body, headers = await forward(session, upstream, request)
        return web.Response(status=status, body=body, headers=headers)

    try:
        await serve(handle)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
