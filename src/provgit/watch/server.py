"""The status server: the watcher's state over HTTP (aiohttp, on the loop's thread).

  GET  /             HTML status page, refreshes itself
  GET  /status.json  the status document (+ a `watch` section: applied commit,
                     running reconcile, refused config, drift)
  GET  /feed.atom    events as an Atom feed
  GET  /metrics      Prometheus text format 0.0.4, or OpenMetrics 1.0 when the
                     scraper's Accept asks for application/openmetrics-text
  GET  /healthz      200 while the loop is alive
  POST /reconcile    fetch and reconcile now (a git host's webhook): the bearer
                     token, or a GitHub signature / GitLab token made with the
                     webhook secret (webhook.py)
  POST /suspend      {"reason": TEXT, "element": NAME?, "who": TEXT?}: hold writes
                     (the network, or one element: 404 for a name the config
                     lacks, as `provgit suspend`); token required
  POST /resume       {"element": NAME?, "who": TEXT?}: lift it, run now; token required

Connections are bounded (MAX_CONNECTIONS; more are closed at once) and so is
the time a client may take to send a whole request (REQUEST_SECONDS): clients
that open connections and trickle headers (slowloris) would otherwise hold
every file descriptor the watcher has, and its runs could open nothing.

On 127.0.0.1 (the default) reads are open; bound anywhere else, every request
needs `Authorization: Bearer <token>` (the token comes from an environment
variable, never from the command line, so `ps` does not show it), except
POST /reconcile, which checks its own three ways in.

Open reads on a loopback address are open to the admin's browser too, and so
to any web page it shows: a page whose name the attacker re-points at
127.0.0.1 (DNS rebinding) is same-origin with this server and may read every
answer. Such a request carries the attacker's name in its Host header, so on a
loopback address (or whenever names are allowed, `--allowed-host`) a request
whose Host is not the bound address, a loopback address, `localhost` or an
allowed name is refused (421) before any handler, except POST /reconcile
(its own proof, whatever name a git host's delivery was sent to).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from provgit.render.status_files import status_json
from provgit.watch.webhook import bearer_ok, verdict
from provgit.wire.hosts import allowed_hosts, foreign_host, is_loopback


class Exposition(Protocol):
    def exposition(self, accept: str | None = None) -> tuple[bytes, str]: ...


class StatusProvider(Protocol):
    @property
    def metrics(self) -> Exposition: ...

    def status_document(self) -> dict[str, Any]: ...

    def page(self, doc: dict[str, Any]) -> str: ...

    def feed(self, doc: dict[str, Any], page: str, self_href: str) -> str | None: ...

    def trigger(self, reason: str) -> None: ...

    def health(self) -> tuple[bool, dict[str, Any]]: ...

    def suspend(self, element: str | None, reason: str, who: str) -> dict[str, Any]: ...

    def resume(self, element: str | None, who: str) -> dict[str, Any] | None: ...


PROVIDER: web.AppKey[StatusProvider] = web.AppKey("provider", StatusProvider)
TOKEN: web.AppKey[str | None] = web.AppKey("token", str)
WEBHOOK_SECRET: web.AppKey[str | None] = web.AppKey("webhook_secret", str)
READS_NEED_TOKEN: web.AppKey[bool] = web.AppKey("reads_need_token", bool)
# The names a request's Host may carry; None: any (bound off loopback, none allowed).
HOSTS: web.AppKey[frozenset[str] | None] = web.AppKey("hosts", frozenset)
# A fleet's own POST /reconcile (fleet_hook.py): a delivery names its network.
Reconcile = Callable[[web.Request], Awaitable[web.Response]]
RECONCILE: web.AppKey[Reconcile | None] = web.AppKey("reconcile", object)  # type: ignore[arg-type]


def _authorized(request: web.Request) -> bool:
    return bearer_ok(request, request.app[TOKEN])


def _deny(message: str, status: int = 401) -> web.Response:
    return web.json_response(
        {"error": message},
        status=status,
        headers={"WWW-Authenticate": 'Bearer realm="provgit"'} if status == 401 else None,
    )


def _foreign_host(request: web.Request) -> web.Response | None:
    if request.path == "/reconcile":
        return None
    # Without a Host header aiohttp gives the socket's own address: allowed.
    shown = foreign_host(request.host, request.app[HOSTS])
    if shown is None:
        return None
    return web.json_response(
        {
            "error": f"Host {shown} is not this status server's name: use its address, "
            "or start it with --allowed-host NAME"
        },
        status=421,
    )


@web.middleware
async def _guard(request: web.Request, handler: Any) -> web.StreamResponse:
    refused = _foreign_host(request)
    if refused is not None:
        return refused
    # A git host's delivery carries its own proof, not the bearer token.
    own_auth = request.path in ("/healthz", "/reconcile")
    if request.app[READS_NEED_TOKEN] and not own_auth and not _authorized(request):
        return _deny("a bearer token is required")
    response: web.StreamResponse = await handler(request)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


async def _document(request: web.Request) -> dict[str, Any]:
    provider = request.app[PROVIDER]
    # A fleet's documents are built apart and served from memory (fleet_status.py).
    served = getattr(provider, "served_document", None)
    if served is not None:
        kept: dict[str, Any] = await served()
        return kept
    # Off the event loop: deriving a large network's status must not hold up runs.
    doc: dict[str, Any] = await asyncio.to_thread(provider.status_document)
    return doc


async def _index(request: web.Request) -> web.Response:
    doc = await _document(request)
    page = request.app[PROVIDER].page(doc)
    return web.Response(text=page, content_type="text/html", charset="utf-8")


async def _status(request: web.Request) -> web.Response:
    doc = await _document(request)
    return web.Response(text=status_json(doc), content_type="application/json")


async def _feed(request: web.Request) -> web.Response:
    doc = await _document(request)
    # On the server the page is `/`, and the feed's own URL is the one asked for.
    body = request.app[PROVIDER].feed(doc, "/", str(request.url))
    if body is None:
        return web.json_response({"error": "no feed here: read each network's"}, status=404)
    return web.Response(text=body, content_type="application/atom+xml", charset="utf-8")


async def _metrics(request: web.Request) -> web.Response:
    # Content negotiation (OpenMetrics or Prometheus text), so caches keep both.
    # Off the event loop: a scrape reads every element's status from the journal.
    exposition = request.app[PROVIDER].metrics.exposition
    body, content_type = await asyncio.to_thread(exposition, request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type, "Vary": "Accept"})


async def _healthz(request: web.Request) -> web.Response:
    ok, detail = request.app[PROVIDER].health()
    return web.json_response({"ok": ok, **detail}, status=200 if ok else 503)


def _writer_denied(request: web.Request) -> web.Response | None:
    """POSTs change what the watcher does: always behind the token."""
    if not request.app[TOKEN]:
        return _deny(
            f"POST {request.path} is disabled: start the watcher with its token variable set "
            "(--token-env)",
            403,
        )
    if not _authorized(request):
        return _deny("a bearer token is required")
    return None


async def _reconcile(request: web.Request) -> web.Response:
    own = request.app[RECONCILE]
    if own is not None:
        return await own(request)
    found = await verdict(request, request.app[TOKEN], request.app[WEBHOOK_SECRET])
    if found.run:
        request.app[PROVIDER].trigger(found.reason)
    if found.status == 401:
        return _deny(found.body["error"])
    return web.json_response(found.body, status=found.status)


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        return web.json_response({"error": "the body is not JSON"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "the body must be a JSON object"}, status=400)
    for k in ("element", "reason", "who"):
        if body.get(k) is not None and not isinstance(body[k], str):
            return web.json_response({"error": f"{k!r} must be a string"}, status=400)
    return body


async def _suspend(request: web.Request) -> web.Response:
    denied = _writer_denied(request)
    if denied is not None:
        return denied
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    reason = (body.get("reason") or "").strip()
    if not reason:
        return web.json_response({"error": "'reason' is required: say why"}, status=400)
    try:
        s = request.app[PROVIDER].suspend(body.get("element"), reason, body.get("who") or "api")
    except LookupError as e:
        # Not 200: a script (or a person) reading the status code must not
        # take a mistyped element for a suspended one.
        return web.json_response({"error": str(e.args[0])}, status=404)
    return web.json_response({"suspended": s})


async def _resume(request: web.Request) -> web.Response:
    denied = _writer_denied(request)
    if denied is not None:
        return denied
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    try:
        s = request.app[PROVIDER].resume(body.get("element"), body.get("who") or "api")
    except LookupError as e:  # a fleet's network not run here
        return web.json_response({"error": str(e.args[0])}, status=404)
    return web.json_response({"resumed": s})


def make_app(
    provider: StatusProvider,
    token: str | None,
    reads_need_token: bool,
    webhook_secret: str | None = None,
    reconcile: Reconcile | None = None,
    hosts: frozenset[str] | None = None,
) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=1 << 20)
    app[HOSTS] = hosts
    app[RECONCILE] = reconcile
    app[PROVIDER] = provider
    app[TOKEN] = token
    app[WEBHOOK_SECRET] = webhook_secret
    app[READS_NEED_TOKEN] = reads_need_token
    app.router.add_get("/", _index)
    app.router.add_get("/status.json", _status)
    app.router.add_get("/feed.atom", _feed)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_post("/reconcile", _reconcile)
    app.router.add_post("/suspend", _suspend)
    app.router.add_post("/resume", _resume)
    return app


MAX_CONNECTIONS = 200
REQUEST_SECONDS = 10.0


class _GuardedHandler(RequestHandler):
    """A connection that is closed when over the cap, or when a whole window
    of REQUEST_SECONDS passes with no request received and none being served."""

    _deadline: asyncio.TimerHandle | None = None
    _seen = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        manager = self._manager
        if manager is not None and len(manager.connections) > MAX_CONNECTIONS:
            transport.close()
            return
        self._deadline = self._loop.call_later(REQUEST_SECONDS, self._check)

    def _check(self) -> None:
        busy = self._current_request is not None or self._request_count != self._seen
        if not busy:
            self.force_close()  # closes the transport
            return
        self._seen = self._request_count
        self._deadline = self._loop.call_later(REQUEST_SECONDS, self._check)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)


class _GuardedServer(Server):
    def __call__(self) -> RequestHandler:
        return _GuardedHandler(self, loop=self._loop, **self._kwargs)


class _Runner(web.AppRunner):
    async def _make_server(self) -> Server:
        server = await super()._make_server()
        # The app builds its own Server; only the handler it makes differs.
        server.__class__ = _GuardedServer
        return server


async def start(
    provider: StatusProvider,
    host: str,
    port: int,
    token: str | None,
    webhook_secret: str | None = None,
    reconcile: Reconcile | None = None,
    allowed: tuple[str, ...] = (),
) -> tuple[web.AppRunner, str]:
    """Bind and serve; returns the runner (to clean up) and the URL actually bound.
    `allowed`: names a request's Host may give besides the address (--allowed-host)."""
    hosts = allowed_hosts(host, allowed)
    app = make_app(provider, token, not is_loopback(host), webhook_secret, reconcile, hosts)
    runner = _Runner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    shown = f"[{host}]" if ":" in host else host
    return runner, f"http://{shown}:{bound}"
