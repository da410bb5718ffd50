"""`provgit element`: run an element simulator, and change its faults while it runs."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import urllib.error
import urllib.request
from typing import Any

import click

from provgit import aio, exitcodes
from provgit.cli.hosts import host_names
from provgit.records import ELEMENT_TYPES
from provgit.wire.hosts import is_loopback

DEFAULT_TOKEN_ENV = "PROVGIT_ELEMENT_TOKEN"


@click.group(name="element")
def element() -> None:
    """Network element simulator (the element API v1 over HTTP)."""


@element.command(name="serve")
@click.option("--name", required=True, help="Element name.")
@click.option("--type", "element_type", required=True, type=click.Choice(ELEMENT_TYPES))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="TCP port; 0 picks a free one (printed on start).",
)
@click.option(
    "--db",
    "db",
    required=True,
    type=click.Path(dir_okay=False),
    help="SQLite file holding the element (created if missing).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    callback=host_names,
    metavar="NAME",
    help="A name the simulator may be reached by besides its address, localhost and a "
    "loopback address (repeatable); a request naming another Host is refused (421), "
    "against DNS rebinding. Checked on a loopback --host, and on any once one is given.",
)
@click.option(
    "--token-env",
    default=DEFAULT_TOKEN_ENV,
    show_default=True,
    help="Environment variable holding the bearer token.",
)
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0)
@click.option("--jitter-ms", type=click.FloatRange(min=0), default=0.0)
@click.option(
    "--error-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of API requests answered with a 500.",
)
@click.option("--offline", is_flag=True, help="Start stopped/offline (503).")
@click.option("--locked", is_flag=True, help="Start locked/busy (423 on writes).")
@click.option("--admin", is_flag=True, help="Enable /admin/faults, /admin/edit, /admin/reset.")
@click.option(
    "--retention",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Changes kept for the feed; older 'since' answers 410 too old.",
)
@click.option(
    "--feed-page",
    type=click.IntRange(min=1),
    help="The most changes one change-feed answer holds, whatever limit is asked "
    "(an element that pages below it; default: the API's maximum).",
)
@click.option(
    "--call-load",
    metavar="PROFILE",
    help="Report a live call load: a percent (85) or seconds:percent steps "
    "('0:10,60:85,300:15') from the start.",
)
def serve(
    name: str,
    element_type: str,
    port: int,
    db: str,
    host: str,
    allowed_hosts: tuple[str, ...],
    token_env: str,
    latency_ms: float,
    jitter_ms: float,
    error_rate: float,
    offline: bool,
    locked: bool,
    admin: bool,
    retention: int,
    feed_page: int | None,
    call_load: str | None,
) -> int:
    """Serve one element from the SQLite file DB until SIGTERM."""
    from provgit.simulator.server import Faults, print_ready
    from provgit.simulator.server import serve as run_server
    from provgit.simulator.store import ElementStore

    token = os.environ.get(token_env) or None
    if token is None and not is_loopback(host):
        click.echo(
            f"error: no token in ${token_env}; refusing to serve {host} without auth "
            "(only loopback may run without a token)",
            err=True,
        )
        return exitcodes.INVALID
    try:
        store = ElementStore(
            db, name=name, element_type=element_type, retention=retention, synchronous="NORMAL"
        )
    except (ValueError, OSError, sqlite3.Error) as e:
        click.echo(f"error: cannot open element store {db}: {e}", err=True)
        return exitcodes.INVALID
    if feed_page is not None:
        store.feed_page = min(feed_page, store.feed_page)
    store.set_state("offline" if offline else "locked" if locked else "running")
    try:
        store.set_call_load(call_load)
    except ValueError as e:
        click.echo(f"error: --call-load: {e}", err=True)
        return exitcodes.INVALID
    faults = Faults(latency_ms=latency_ms, jitter_ms=jitter_ms, error_rate=error_rate)
    try:
        aio.run(
            run_server(
                store,
                host=host,
                port=port,
                token=token,
                faults=faults,
                admin=admin,
                ready=print_ready,
                allowed=allowed_hosts,
            )
        )
    except OSError as e:
        click.echo(f"error: cannot listen on {host}:{port}: {e.strerror or e}", err=True)
        return exitcodes.INVALID
    return exitcodes.OK


@element.command(name="fault")
@click.option("--url", required=True, help="Simulator base URL, e.g. http://127.0.0.1:8080")
@click.option("--token-env", default=DEFAULT_TOKEN_ENV, show_default=True)
@click.option("--latency-ms", type=click.FloatRange(min=0))
@click.option("--jitter-ms", type=click.FloatRange(min=0))
@click.option("--error-rate", type=click.FloatRange(0, 1))
@click.option("--offline/--online", default=None)
@click.option("--locked/--unlocked", default=None)
@click.option(
    "--refuse",
    multiple=True,
    metavar="COLLECTION/KEY",
    help="Refuse writes of this record (repeatable); replaces the list.",
)
@click.option("--no-refuse", is_flag=True, help="Clear the refused records.")
@click.option(
    "--call-load", metavar="PROFILE", help="A new call-load profile from now ('none': no load)."
)
def fault(
    url: str,
    token_env: str,
    latency_ms: float | None,
    jitter_ms: float | None,
    error_rate: float | None,
    offline: bool | None,
    locked: bool | None,
    refuse: tuple[str, ...],
    no_refuse: bool,
    call_load: str | None,
) -> int:
    """Change the faults of a running simulator (started with --admin); prints them."""
    body: dict[str, Any] = {}
    for name, value in (
        ("latency_ms", latency_ms),
        ("jitter_ms", jitter_ms),
        ("error_rate", error_rate),
        ("offline", offline),
        ("locked", locked),
    ):
        if value is not None:
            body[name] = value
    if refuse or no_refuse:
        items = []
        for item in refuse:
            collection, sep, key = item.partition("/")
            if not sep or not collection or not key:
                click.echo(f"error: --refuse wants COLLECTION/KEY, got {item!r}", err=True)
                return exitcodes.INVALID
            items.append({"collection": collection, "key": key})
        body["refuse"] = items
    if call_load is not None:
        body["call_load"] = None if call_load.strip().lower() == "none" else call_load
    request = urllib.request.Request(
        url.rstrip("/") + "/admin/faults",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    token = os.environ.get(token_env)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            click.echo(response.read().decode())
    except urllib.error.HTTPError as e:
        hint = " (is the simulator running with --admin?)" if e.code == 404 else ""
        click.echo(f"error: simulator answered HTTP {e.code}{hint}", err=True)
        return exitcodes.INVALID
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        click.echo(f"error: cannot reach {url}: {reason}", err=True)
        return exitcodes.INVALID
    return exitcodes.OK


command = element

if __name__ == "__main__":  # `python -m provgit.cli.element` works without the other commands
    try:
        _rv = element.main(standalone_mode=False)
    except click.ClickException as _e:
        _e.show()
        _rv = exitcodes.INVALID
    sys.exit(_rv if isinstance(_rv, int) else exitcodes.OK)
