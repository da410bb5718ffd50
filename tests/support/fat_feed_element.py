"""A hostile element in front of a real simulator: every request goes to the
simulator and its answer back until it is armed (POST /hostile/arm, answered
here); from then on its change feed answers the simulator's changes on the
first page asked for and then page after page of changes it makes up, each
RECORD_KIB kibibytes of one field (a value of its own), PER_PAGE a page,
under keys never given before, in revision order and always "more" due,
until MIB mebibytes of them were sent (few pages, many bytes: far under the
pages provgit follows a feed for, far over its memory).

    python tests/support/fat_feed_element.py SIMULATOR_URL MIB [RECORD_KIB]

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

PER_PAGE = 16  # made-up changes a page


async def main(upstream: str, mib: int, record_kib: int) -> None:
    armed = False
    sent = 0  # bytes of made-up changes sent, every feed read together
    made = 0  # changes made up
    real_top = 0  # the simulator's revision when its feed was last asked

    def made_up(since: int) -> list[dict[str, Any]]:
        nonlocal sent, made
        out = []
        while len(out) < PER_PAGE and sent < mib * 2**20:
            made += 1
            # Each its own value: equal strings would be held once.
            fat = f"{made:010d}".ljust(record_kib * 1024, "x")
            rev = since + len(out) + 1
            out.append(
                {"revision": rev, "collection": "users", "key": f"fat{made}", "op": "put"}
                | {"fields": {"first_name": fat}, "record_revision": rev}
            )
            sent += len(fat)
        return out

    async def handle(request: web.Request, session: aiohttp.ClientSession) -> web.StreamResponse:
        nonlocal armed, real_top
        if request.path == "/hostile/arm":
            armed = True
            return web.json_response({"armed": True})
        feed = request.method == "GET" and request.path.endswith("/changes")
        since = int(request.rel_url.query.get("since", "0"))
        if armed and feed and since > real_top > 0:
            # Past the simulator's feed: made up alone.
            changes = made_up(since)
            top = changes[-1]["revision"] if changes else since
            return web.json_response({"changes": changes, "revision": top, "more": bool(changes)})
        status, body, headers = await forward(session, upstream, request)
        if not armed or not feed or status != 200:
            return web.Response(status=status, body=body, headers=headers)
        page = json.loads(body)
        real_top = max(page["revision"], since)
        changes = made_up(real_top)
        page["changes"] += changes
        page["revision"] = changes[-1]["revision"] if changes else real_top
        page["more"] = bool(changes) or page.get("more") is True
        kept = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        return web.json_response(page, status=status, headers=kept)

    await serve(handle)


if __name__ == "__main__":
    kib = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), kib))
