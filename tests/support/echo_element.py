"""A hostile element in front of a real simulator that quotes a secret it
was sent in an error for the whole write call: every request goes to the
simulator, but a batch of writes holding a secret value is answered

  500  HTTP 500, "voicemail module failed on passcode VALUE" (every write of
       the call waits: a pending update each)
  400  HTTP 400 (code "bad_request"), the same words (every write refused:
       a distribution error each)
  long as 500, the value quoted after 1,995 characters of context: provgit
       keeps 1,999 of an element's message, so it is cut in the middle

where VALUE is the first secret value of the batch, as some elements quote
what they were sent. Only that write's record holds the secret: the others
of the batch must not carry it into the journal, a report or a log either.

    python tests/support/echo_element.py SIMULATOR_URL 500|400|long

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


def _secrets(value: Any) -> list[str]:
    """Every secret value of a batch body (`{"$sensitive": ..., "value": ...}`)."""
    if isinstance(value, dict):
        if "$sensitive" in value and isinstance(value.get("value"), str):
            return [value["value"]]
        return [s for v in value.values() for s in _secrets(v)]
    if isinstance(value, list):
        return [s for v in value for s in _secrets(v)]
    return []


async def main(upstream: str, mode: str) -> None:
    async def handle(request: web.Request, session: aiohttp.ClientSession) -> web.StreamResponse:
        if request.method == "POST" and request.path.endswith("/batch"):
            found = _secrets(json.loads(await request.read()))
            if found:
                message = f"voicemail module failed on passcode {found[0]}"
                if mode == "long":
                    message = "x" * (1995 - len(message) + len(found[0])) + message
                if mode == "400":
                    body = {"code": "bad_request", "message": message}
                    return web.json_response(body, status=400)
                return web.json_response({"code": "error", "message": message}, status=500)
        status, body, headers = await forward(session, upstream, request)
        return web.Response(status=status, body=body, headers=headers)

    await serve(handle)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
