"""`provgit fleet`: many networks from one process, shared among its replicas."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import click

from provgit import aio, exitcodes
from provgit.api.fleet import Fleet, FleetFileError, read_fleet
from provgit.api.watching import PlanOptions, own_credential
from provgit.cli.common import (
    allowed_host_option,
    host_option,
    log_format_option,
    port_option,
    resync_option,
)
from provgit.watch.fleet import FleetSupervisor
from provgit.watch.logs import Log
from provgit.watch.options import WatchOptions
from provgit.wire.hosts import is_loopback


def _read(file: Path) -> Fleet:
    """The fleet file, or every problem with it on stderr and exit 1 (nothing started)."""
    try:
        return read_fleet(file)
    except FleetFileError as e:
        for problem in e.problems:
            click.echo(problem, err=True)
        click.echo(f"{file}: not used ({len(e.problems)} problem(s)); nothing started", err=True)
        sys.exit(exitcodes.INVALID)


@click.group("fleet")
def command() -> None:
    """Serve many networks from one process (a fleet file); replicas share them.

    The fleet file lists the networks (each a git repository, its ref and config
    directory, and what its secrets resolve to) and the PostgreSQL journal the
    fleet's replicas share.

    Every `provgit fleet watch` of the same fleet file is a replica: each runs a
    fair share of the networks (networks / live replicas, rounded up) and takes
    over the networks of a replica that stops (at once) or dies (after the lease
    time). Adding a replica spreads the networks again, without configuration.
    """


@command.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def check(file: Path) -> int:
    """Check FILE as `fleet watch` would, and list its networks."""
    fleet = _read(file)
    for n in fleet.networks:
        click.echo(f"{n.name}\t{n.repo}\t{n.ref}\t{n.path}")
    return exitcodes.OK


@command.command("watch")
@click.argument("file", type=click.Path(path_type=Path))
@host_option
@allowed_host_option
@port_option
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the networks' state directories go, one per network (default: "
    "state_dir of the fleet file, else .provgit-fleet beside it).",
)
@click.option(
    "--fetch-seconds",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Fetch each network's repository this often (0: only on POST /reconcile).",
)
@resync_option
@click.option(
    "--stop-timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="On SIGTERM (or a network handed to another replica), how long to wait for "
    "element writes in flight.",
)
@click.option(
    "--token-env",
    default="PROVGIT_WATCH_TOKEN",
    show_default=True,
    help="Environment variable holding the bearer token (POST; every request when "
    "--host is not a loopback address).",
)
@log_format_option
@click.option("--allow-mass-update", is_flag=True, help="As `provgit watch`, for every network.")
@click.option("--allow-mass-delete", is_flag=True, help="As `provgit watch`, for every network.")
def watch(
    file: Path,
    host: str,
    allowed_hosts: tuple[str, ...],
    port: int,
    state_dir: Path | None,
    fetch_seconds: float,
    resync_seconds: float,
    stop_timeout: float,
    token_env: str,
    log_format: str,
    allow_mass_update: bool,
    allow_mass_delete: bool,
) -> int:
    """Run a fair share of FILE's networks, each as `provgit watch --repo` would.

    One status server for them all: /status.json lists every network, the
    replica holding it and the holder of each of its elements; /metrics has a
    `network` label; / groups by network. SIGTERM stops each network's watcher
    (writes in flight finish) and hands its networks over at once.
    """
    token = os.environ.get(token_env) or None
    own_credential(token)  # never sent to an element as a PIN or token
    if not is_loopback(host) and not token:
        raise click.UsageError(
            f"--host {host} is not a loopback address: set a bearer token in ${token_env} "
            "(every request will need it)"
        )
    fleet = _read(file)
    fleet = replace(fleet, state_dir=(state_dir or fleet.state_dir).resolve())
    template = WatchOptions(
        config=fleet.state_dir,
        state_dir=fleet.state_dir,
        resync_seconds=resync_seconds,
        fetch_seconds=fetch_seconds,
        stop_timeout=stop_timeout,
        token=token,
        plan=PlanOptions(False, allow_mass_delete, allow_mass_update, ()),
    )
    log = Log(log_format)
    supervisor = FleetSupervisor(fleet, template, log)

    def ready(url: str) -> None:
        if log_format == "json":
            Log("json", stream=sys.stdout).info("listening", url=url)
        else:
            click.echo(f"listening on {url}")

    try:
        aio.run(supervisor.run(ready, host, port, token, allowed_hosts))
    except OSError as e:
        raise click.ClickException(f"cannot start: {e.strerror or e}") from None
    return exitcodes.OK
