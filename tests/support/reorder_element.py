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
import sys

import aiohttp
from aiohttp import web
from element_proxy import forward, serve


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
    async def handle(request: web.Request, session: aiohttp.ClientSession) -> web.StreamResponse:
        status, body, headers = await forward(session, upstream, request)
        if request.method == "GET" and status == 200:
            body = _hostile(request.path, body)
        return web.Response(status=status, body=body, headers=headers)

    await serve(handle)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
