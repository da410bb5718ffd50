"""A hostile element in front of a real simulator: every request goes to the
simulator and its answer back until a write has passed; from then on the
element will not let provgit check what it kept:

  feed500  the change feed answers HTTP 500 (and the listing still works)
  cursor   a record listing answers the first page with the same next_cursor
           every time (a listing that never ends)
  fresh    a record listing answers the first page every time, with a
           next_cursor never given before (a listing that never ends and
           never repeats a cursor: the same records under ever new cursors)
  fresh-always  as fresh, from the start (the first observation too)
  endless  (from the first write asked, answered or not) the change feed
           answers one more change, and more to come, every time it is asked
  invent   a record listing (from the start) answers every page full: the
           simulator's records and records it makes up, under keys never
           listed before, with a next_cursor never given before (a listing
           that never ends, never repeats, and grows without bound)
  huge     as endless, and every write it passes on is answered as done at a
           revision 10**12 past the simulator's: a feed read up to the writes
           never gets there

    python tests/support/blind_element.py SIMULATOR_URL MODE

Prints "listening on http://127.0.0.1:PORT" once serving; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp
from aiohttp import web
from element_proxy import forward, serve

WRITES = ("PUT", "POST", "DELETE")
HUGE = 10**12


def _huge(body: bytes) -> bytes:
    """A write's answer with every revision in it moved HUGE further on."""
    doc = json.loads(body)
    for item in doc.get("results", [doc]):
        if isinstance(item, dict) and isinstance(item.get("revision"), int):
            item["revision"] += HUGE
    return json.dumps(doc).encode()


async def main(upstream: str, mode: str) -> None:
    written = False
    handed = 0  # fresh: cursors handed out

    async def handle(request: web.Request, session: aiohttp.ClientSession) -> web.StreamResponse:
        nonlocal written, handed
        listing = request.method == "GET" and request.path.endswith("/records")
        if written and mode == "feed500" and request.path.endswith("/changes"):
            return web.json_response({"code": "error", "message": "feed broken"}, status=500)
        endless = mode in ("endless", "huge")
        if mode == "endless" and request.method in WRITES:
            written = True
        if written and endless and request.path.endswith("/changes"):
            since = int(request.rel_url.query.get("since", "0"))
            change = {"revision": since + 1, "collection": "users", "key": "nobody"}
            change.update(op="delete", record_revision=since + 1)
            return web.json_response({"changes": [change], "revision": since + 1, "more": True})
        query = request.rel_url.query.copy()
        fresh = (written and mode == "fresh") or mode == "fresh-always"
        again = (written and mode == "cursor") or fresh or mode == "invent"
        if again and listing:
            query.pop("cursor", None)
        status, body, headers = await forward(session, upstream, request, params=query)
        if request.method in WRITES and status < 300:
            written = True
            if mode == "huge":
                body = _huge(body)
        elif mode == "invent" and listing and status == 200:
            page = json.loads(body)
            handed += 1
            limit = int(request.rel_url.query.get("limit", "1000"))
            made = page["records"][0] if page["records"] else None
            if made is not None:
                # The simulator's own on the first page only: no page repeats another.
                real = page["records"] if handed == 1 else []
                page["records"] = real + [
                    {**made, "key": f"made{handed}-{i}"} for i in range(limit - len(real))
                ]
            page["next_cursor"] = f"invent{handed}"
            body = json.dumps(page).encode()
        elif again and listing and status == 200:
            page = json.loads(body)
            handed += 1
            page["next_cursor"] = "again" if mode == "cursor" else f"fresh{handed}"
            body = json.dumps(page).encode()
        return web.Response(status=status, body=body, headers=headers)

    await serve(handle)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
