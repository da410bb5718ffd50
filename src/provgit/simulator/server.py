"""The element simulator: the element API v1 over HTTP, served from an ElementStore.

Used for tests, demos and benchmarks. Fault injection (latency and jitter,
error rate, offline, locked, refused keys) is set at start and, when the admin
endpoints are enabled, changed while running; `/admin/edit` changes a record
as the element's own admin tool would, producing drift for provgit to see.

Store calls are synchronous on the event loop on purpose: a SQLite write in
WAL mode with synchronous=NORMAL costs tens of microseconds, less than a
thread hop, and it keeps every write strictly ordered.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import random
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from provgit.simulator import conditions
from provgit.simulator.callload import ProfileError
from provgit.simulator.faults import MAX_LATE, Faults, apply_faults
from provgit.simulator.host_guard import host_guard
from provgit.simulator.store import MAX_FEED_PAGE, MAX_PAGE, ElementStore
from provgit.simulator.store_batch import STALE
from provgit.wire import codec
from provgit.wire.hosts import allowed_hosts
from provgit.wire.protocol import (
    FENCE_HEADER,
    ConflictError,
    ElementError,
    FencedError,
    RefusedError,
    StoredRecord,
    WriteOp,
    parse_fence,
)

__all__ = ["Faults", "apply_faults", "make_app", "print_ready", "serve"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STORE: web.AppKey[ElementStore] = web.AppKey("store", ElementStore)

FAULTS: web.AppKey[Faults] = web.AppKey("faults", Faults)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=codec.dumps(body),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="element"'} if status == 401 else None
    return _json({"code": code, "message": message, **extra}, status, headers)


def _element_error(error: ElementError, *, if_match: bool = False) -> web.Response:
    return _json(error.to_json(), codec.status_for(error, if_match=if_match))


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's answer, with every error as a JSON body."""
    try:
        return await handler(request)
    except _BadRequest as e:
        return _error(400, "bad_request", str(e))
    except web.HTTPException as e:
        # Unknown routes and methods answer JSON too, like everything else.
        if e.status == 404:
            return _error(404, "not_found", f"no such resource: {request.path}")
        response = _error(e.status, "bad_request", e.reason)
        # A 405 must say which methods the resource has (RFC 9110 15.5.6).
        if "Allow" in e.headers:
            response.headers["Allow"] = e.headers["Allow"]
        return response
    except ElementError as e:
        return _element_error(e)


class _BadRequest(Exception):
    pass


def make_app(
    store: ElementStore,
    *,
    token: str | None = None,
    faults: Faults | None = None,
    admin: bool = False,
) -> web.Application:
    """The aiohttp application serving `store`. `token` None means no auth."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None:
            sent = request.headers.get("Authorization", "")
            scheme, _, value = sent.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode(), token.encode()
            ):
                return _error(401, "unauthorized", "missing or wrong bearer token")
        if not request.path.startswith(codec.API_PREFIX):
            return await _answer(request, handler)  # admin: no faults
        f = request.app[FAULTS]
        if f.token_revoked:
            return _error(401, "unauthorized", "missing or wrong bearer token")
        loop = asyncio.get_running_loop()
        started = loop.time()
        if f.error_rate and random.random() < f.error_rate:
            response: web.StreamResponse = _error(
                500, "injected", "internal error (injected fault)"
            )
        else:
            response = await _answer(request, handler)
        worked = loop.time() - started
        # Latency is added after the work and before the answer. Delaying
        # before the work would make requests that arrive while the loop is
        # busy start their delay together, locking them into waves (measured:
        # 32 writes at 20 ms took 32 ms cycles); a delayed answer keeps each
        # request's own timing, like a network would. It also means a request
        # cut off by a timeout may have been applied — as on a real element.
        # The latency is the element's answer time, work included. A sleep
        # ends late (the selector rounds up to whole milliseconds, then the
        # process must be scheduled: measured 20.7 ms answers for 20 ms with a
        # fixed 1 ms allowance), so how late it ends is learnt from every
        # answer and aimed early by that much.
        asked = f.delay()
        aimed = asked - f.late
        delay = aimed - worked
        if delay > 0:
            await asyncio.sleep(delay)
            # How late this sleep ended, whatever it aimed at: an average of
            # those stays put however many requests share the loop.
            late = (loop.time() - started) - aimed
            f.late = min(max(0.8 * f.late + 0.2 * late, 0.0), MAX_LATE)
        # How long the element held the request, and how much of it was work
        # (RFC Server-Timing): tells element time from network and client time.
        response.headers["Server-Timing"] = (
            f"work;dur={worked * 1000:.3f}, total;dur={(loop.time() - started) * 1000:.3f}"
        )
        return response

    app = web.Application(middlewares=[guard], client_max_size=64 * 1024**2)
    app[STORE] = store
    app[FAULTS] = faults or Faults()
    store.forced_refusals = app[FAULTS].refuse
    p = codec.API_PREFIX
    app.router.add_get(f"{p}/element", _info)
    app.router.add_get(f"{p}/collections/{{collection}}/records", _list)
    app.router.add_get(f"{p}/collections/{{collection}}/records/{{key:.+}}", _get)
    app.router.add_put(f"{p}/collections/{{collection}}/records/{{key:.+}}", _put)
    app.router.add_delete(f"{p}/collections/{{collection}}/records/{{key:.+}}", _delete)
    app.router.add_get(f"{p}/changes", _changes)
    app.router.add_post(f"{p}/batch", _batch)
    if admin:
        app.router.add_get("/admin/faults", _get_faults)
        app.router.add_post("/admin/faults", _set_faults)
        app.router.add_post("/admin/edit", _edit)
        app.router.add_post("/admin/reset", _reset)
        app.router.add_get("/admin/fences", _fences)
    return app


# ---- helpers -----------------------------------------------------------------


_INTEGER = re.compile(r"-?[0-9]+")


def _fence(request: web.Request) -> tuple[str, int] | None:
    """The writer's fencing token (`X-Provgit-Fence`), if it sent one."""
    value = request.headers.get(FENCE_HEADER)
    if value is None:
        return None
    try:
        return parse_fence(value.strip())
    except ValueError as e:
        # Fail closed: a fence that cannot be compared is refused as a stale one.
        raise FencedError(f"write refused: {e}") from None


def _int_query(
    request: web.Request,
    name: str,
    default: int | None = None,
    *,
    low: int = 0,
    high: int = codec.MAX_REVISION,
) -> int:
    """An integer query parameter in [low, high], as the OpenAPI document bounds it."""
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise _BadRequest(f"query parameter {name!r} is required")
        return default
    # Plain ASCII digits only: int() would also take " 1_000" or other scripts' digits.
    if not _INTEGER.fullmatch(raw):
        raise _BadRequest(f"query parameter {name!r} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise _BadRequest(f"query parameter {name!r} must be from {low} to {high}, got {value}")
    return value


def _if_match(request: web.Request) -> conditions.IfMatch | None:
    try:
        return conditions.parse_if_match(request.headers.get("If-Match"))
    except conditions.MalformedHeader as e:
        raise _BadRequest(str(e)) from None


def _at_revision(
    store: ElementStore, collection: str, key: str, if_match: conditions.IfMatch
) -> int:
    """The revision to write at for an If-Match that is not one strong tag
    (`*`, weak tags, lists): the record's own, when the header matches it."""
    exact = if_match.exact
    if exact is not None:
        return exact
    current = store.get_record(collection, key).revision  # absent: 404, as for one tag
    if not if_match.matches(current):
        raise ConflictError(f"{collection}/{key} is at revision {current}: {STALE}")
    return current


async def _body(request: web.Request) -> Any:
    try:
        return codec.loads(await request.read())
    except ValueError:  # orjson's JSONDecodeError, invalid UTF-8 included
        raise _BadRequest("request body is not valid JSON") from None


def _record_json(record: StoredRecord) -> dict[str, Any]:
    return {
        "collection": record.collection,
        "key": record.key,
        "revision": record.revision,
        "fields": record.fields,
    }


# ---- element API ---------------------------------------------------------------


async def _info(request: web.Request) -> web.Response:
    return _json(asdict(request.app[STORE].info()))


async def _list(request: web.Request) -> web.Response:
    store = request.app[STORE]
    collection = request.match_info["collection"]
    limit = _int_query(request, "limit", 1000, low=1, high=MAX_PAGE)
    rows, cursor, revision = store.list_records_json(
        collection, request.query.get("cursor") or None, limit
    )
    # The stored fields are already JSON: splice them in rather than parse and
    # re-encode 5,000 records per page.
    head = '{"collection":' + json.dumps(collection, ensure_ascii=False) + ',"key":'
    items = ",".join(
        head + json.dumps(key, ensure_ascii=False) + f',"revision":{rev},"fields":{text}}}'
        for key, text, rev in rows
    )
    tail = json.dumps({"next_cursor": cursor, "revision": revision})[1:]
    return web.Response(text='{"records":[' + items + "]," + tail, content_type="application/json")


async def _get(request: web.Request) -> web.Response:
    record = request.app[STORE].get_record(
        request.match_info["collection"], request.match_info["key"]
    )
    return _json(_record_json(record), headers={"ETag": f'"{record.revision}"'})


async def _put(request: web.Request) -> web.Response:
    collection, key = request.match_info["collection"], request.match_info["key"]
    if_match = _if_match(request)
    try:
        create_only = conditions.create_only(request.headers.get("If-None-Match"))
    except conditions.MalformedHeader as e:
        raise _BadRequest(str(e)) from None
    if if_match is None and not create_only:
        return _error(
            428,
            "precondition_required",
            'a put must be conditional: If-None-Match: * to create, If-Match: "<revision>" '
            "to update",
        )
    fields = await _body(request)
    if not isinstance(fields, dict):
        raise _BadRequest("the request body must be a JSON object of fields")
    store = request.app[STORE]
    try:
        if if_match is not None and create_only:
            # Both conditions (RFC 9110 13.2.2): a record If-Match can hold for
            # exists, so If-None-Match: * fails; an absent one is 404 as ever.
            store.get_record(collection, key)
            raise ConflictError(f"{collection}/{key} already exists: {STALE}")
        at = None if if_match is None else _at_revision(store, collection, key, if_match)
        revision, text = store.write_json(
            WriteOp("put", collection, key, fields, at), _fence(request)
        )
    except ConflictError as e:
        return _element_error(e, if_match=if_match is not None)
    # The stored fields are already JSON (secrets redacted): splice them in.
    head = json.dumps({"collection": collection, "key": key, "revision": revision})
    return web.Response(
        text=head[:-1] + ',"fields":' + (text or "{}") + "}",
        status=201 if if_match is None else 200,
        content_type="application/json",
        headers={"ETag": f'"{revision}"'},
    )


async def _delete(request: web.Request) -> web.Response:
    collection, key = request.match_info["collection"], request.match_info["key"]
    if_match = _if_match(request)
    store = request.app[STORE]
    try:
        at = None if if_match is None else _at_revision(store, collection, key, if_match)
        result = store.write(WriteOp("delete", collection, key, None, at), fence=_fence(request))
    except ConflictError as e:
        return _element_error(e, if_match=True)
    return _json({"collection": collection, "key": key, "revision": result.revision})


async def _changes(request: web.Request) -> web.Response:
    since = _int_query(request, "since")
    limit = _int_query(request, "limit", 10000, low=1, high=MAX_FEED_PAGE)
    feed = request.app[STORE].changes(since, limit)
    return _json(
        {
            "changes": [codec.change_to_json(c) for c in feed.changes],
            "revision": feed.revision,
            "more": feed.more,
        }
    )


async def _batch(request: web.Request) -> web.Response:
    body = await _body(request)
    items = body.get("ops") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise _BadRequest('the request body must be {"ops": [...]}')
    try:
        ops = [codec.op_from_json(item) for item in items]
    except ValueError as e:
        raise _BadRequest(f"bad operation: {e}") from None
    store = request.app[STORE]
    results = store.write_batch(ops, fence=_fence(request))
    out: list[dict[str, Any]] = []
    for op, result in zip(ops, results, strict=True):
        if result.error is None:
            out.append({"ok": True, "revision": result.revision})
        else:
            status = codec.status_for(result.error, if_match=op.if_revision is not None)
            out.append({"ok": False, "status": status, "error": result.error.to_json()})
    return _json({"results": out, "revision": store.revision})


# ---- admin (fault injection, out-of-band edits) --------------------------------


def _faults_json(app: web.Application) -> dict[str, Any]:
    f, store = app[FAULTS], app[STORE]
    state = store.state
    return {
        "latency_ms": f.latency_ms,
        "jitter_ms": f.jitter_ms,
        "error_rate": f.error_rate,
        "offline": state == "offline",
        "locked": state == "locked",
        "refuse": [{"collection": c, "key": k} for c, k in sorted(f.refuse)],
        "token_revoked": f.token_revoked,
        "call_load": store.call_load_profile,
        "lie": store.lie,
        "refuse_reason": store.refusal_reason,
    }


async def _get_faults(request: web.Request) -> web.Response:
    return _json(_faults_json(request.app))


async def _set_faults(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        apply_faults(request.app[STORE], request.app[FAULTS], body)
    except ProfileError as e:
        # Well-typed, as the schema allows, but not a profile the element can follow.
        return _error(422, "refused", f"bad faults: {e}")
    except ValueError as e:
        raise _BadRequest(f"bad faults: {e}") from None
    return _json(_faults_json(request.app))


async def _edit(request: web.Request) -> web.Response:
    body = await _body(request)
    # `silent: true`: the change feed never names this edit (a lying feed).
    silent = isinstance(body, dict) and body.pop("silent", False) is True
    try:
        op = codec.op_from_json(body)
    except ValueError as e:
        raise _BadRequest(f"bad edit: {e}") from None
    store = request.app[STORE]
    try:
        if silent:
            store.write_silently(op)
            return _json({"collection": op.collection, "key": op.key, "revision": store.revision})
        result = store.write(op, force=True)
    except RefusedError as e:
        return _element_error(e)
    return _json({"collection": op.collection, "key": op.key, "revision": result.revision})


async def _fences(request: web.Request) -> web.Response:
    return _json(request.app[STORE].fences.report())


async def _reset(request: web.Request) -> web.Response:
    store, faults = request.app[STORE], request.app[FAULTS]
    store.reset()
    faults.latency_ms = faults.jitter_ms = faults.error_rate = 0.0
    faults.refuse.clear()
    faults.token_revoked = False
    store.lie = None
    return _json({"revision": store.revision})


# ---- running -------------------------------------------------------------------


async def serve(
    store: ElementStore,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    faults: Faults | None = None,
    admin: bool = False,
    ready: Callable[[str], None] | None = None,
    allowed: tuple[str, ...] = (),
) -> None:
    """Serve until SIGTERM/SIGINT; `ready` gets the URL once bound (port 0 = any free).
    `allowed`: Host names served besides its own (--allowed-host, see host_guard)."""
    app = make_app(store, token=token, faults=faults, admin=admin)
    app.middlewares.insert(0, host_guard(allowed_hosts(host, allowed)))
    # Bounded: a request held by injected latency must not hold up a SIGTERM.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready(url)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        store.close()


def print_ready(url: str) -> None:
    print(f"listening on {url}", flush=True)
    sys.stdout.flush()
