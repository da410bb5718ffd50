"""A hostile element in front of a real simulator: every request goes to the
simulator and its answer back, except a record listing, which answers the
simulator's records on its first page and then page after page of records
it makes up, each RECORD_KIB kibibytes of one field (a value of its own),
under keys and cursors never given before, until MIB mebibytes of them were
sent (few records, many bytes: far under any record count provgit bounds,
far over its memory).

    python tests/support/fat_element.py SIMULATOR_URL MIB [RECORD_KIB]

Prints "listening on http://127.0.0.1:PORT" once serving; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp
from aiohttp import web
from element_proxy import forward, serve

PER_PAGE = 4  # made-up records a page


async def main(upstream: str, mib: int, record_kib: int) -> None:
    sent = 0  # bytes of made-up records sent, every listing together
    handed = 0  # pages (and cursors) handed out

    async def handle(request: web.Request, session: aiohttp.ClientSession) -> web.StreamResponse:
        nonlocal sent, handed
        query = request.rel_url.query.copy()
        listing = request.method == "GET" and request.path.endswith("/records")
        first = "cursor" not in query
        if listing and not first:
            query.pop("cursor")  # a made-up cursor: the simulator's answer is not used
        status, body, headers = await forward(session, upstream, request, params=query)
        if not listing or status != 200:
            return web.Response(status=status, body=body, headers=headers)
        page = json.loads(body)
        real = page["records"] if first else []
        collection = request.match_info.get("tail", "").split("/")[-2]
        made = []
        while len(made) < PER_PAGE and sent < mib * 2**20:
            handed += 1
            # Each its own value: equal strings would be held once (observe's share_strings).
            fat = f"{handed:010d}".ljust(record_kib * 1024, "x")
            made.append(
                {"collection": collection, "key": f"fat{handed}", "revision": 1}
                | {"fields": {"note": fat}}
            )
            sent += len(fat)
        page["records"] = real + made
        page["next_cursor"] = f"fat{handed}" if made else None
        kept = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        return web.json_response(page, status=status, headers=kept)

    await serve(handle)


if __name__ == "__main__":
    kib = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), kib))
