"""A hostile element in front of a real simulator that answers provgit's
writes with revisions that are no revision: every request goes to the
simulator and its answer back, but each write's answer has every revision
in it replaced by VALUE:

  huge    2**64 - 1 (JSON takes it; a 64-bit signed journal column does not)
  text    "12" (a string)
  float   12.5
  minus   -1
  bool    true

    python tests/support/odd_revision_element.py SIMULATOR_URL MODE

Prints "listening on http://127.0.0.1:PORT" once serving; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
from aiohttp import web
from element_proxy import forward, serve

WRITES = ("PUT", "POST", "DELETE")
VALUES: dict[str, Any] = {
    "huge": 2**64 - 1,
    "text": "12",
    "float": 12.5,
    "minus": -1,
    "bool": True,
}


def _odd(body: bytes, value: Any) -> bytes:
    doc = json.loads(body)
    for item in [doc, *doc.get("results", [])]:
        if isinstance(item, dict) and "revision" in item:
            item["revision"] = value
    return json.dumps(doc).encode()


async def main(upstream: str, mode: str) -> None:
    value = VALUES[mode]

    async def handle(request: web.Request, session: aiohttp.ClientSession) -> web.StreamResponse:
        status, body, headers = await forward(session, upstream, request)
        if request.method in WRITES and status < 300 and body:
            body = _odd(body, value)
        return web.Response(status=status, body=body, headers=headers)

    await serve(handle)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
