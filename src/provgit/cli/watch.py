"""`provgit watch`: follow a directory or a git ref and keep every element in sync."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from provgit import aio, exitcodes
from provgit.api.watching import (
    SETTINGS_FILE,
    JournalError,
    PlanOptions,
    journal_pool,
    own_credential,
    webhook_secret,
)
from provgit.cli.common import (
    allowed_host_option,
    host_option,
    log_format_option,
    port_option,
    resync_option,
    settings_missing_message,
    state_dir_for,
    state_dir_option,
)
from provgit.cli.plan import plan_options
from provgit.fsutil import check_default_state_dir
from provgit.watch.follower import FollowError
from provgit.watch.logs import Log
from provgit.watch.loop import Watcher, WatchOptions
from provgit.watch.options import DriftMode
from provgit.wire.hosts import is_loopback


def _where(path: Path, repo: str | None, ref: str, state_dir: str | None) -> tuple[Path, Path, str]:
    """(config directory or state dir for a repository, state dir, subdir in the
    repository); a usage error for what git or the loop would misread."""
    if repo:
        if repo.startswith("-") or ref.startswith("-"):
            # git would take it as an option (--upload-pack=... runs a command).
            raise click.UsageError(
                f"--repo and --ref cannot start with '-' "
                f"(got {repo if repo.startswith('-') else ref!r}): "
                "give a URL or a path (./-name for a folder named so)"
            )
        subdir = path.as_posix()
        if path.is_absolute() or ".." in path.parts:
            raise click.UsageError(
                "with --repo, PATH is the config directory inside the repository"
            )
        sdir = Path(state_dir or os.environ.get("PROVGIT_STATE_DIR") or ".provgit")
        if not (state_dir or os.environ.get("PROVGIT_STATE_DIR")):
            check_default_state_dir(sdir)  # the current directory's: maybe a checkout
        config = sdir
    else:
        if not path.is_dir():
            raise click.UsageError(f"config directory {str(path)!r} does not exist")
        if not ((path / SETTINGS_FILE).is_file() or (path / SETTINGS_FILE).is_symlink()):
            raise click.UsageError(settings_missing_message(path))
        subdir = "."
        sdir = state_dir_for(path, state_dir)
        config = path
    return config, sdir, subdir


def _credentials(
    host: str, token_env: str, secret_env: str, secret_file: Path | None
) -> tuple[str | None, str | None]:
    """The bearer token and the webhook secret, from the environment or a file."""
    token = os.environ.get(token_env) or None
    own_credential(token)  # never sent to an element as a PIN or token
    if not is_loopback(host) and not token:
        raise click.UsageError(
            f"--host {host} is not a loopback address: set a bearer token in ${token_env} "
            "(every request will need it)"
        )
    try:
        file = str(secret_file.absolute()) if secret_file else None
        return token, webhook_secret(secret_env, file)
    except ValueError as e:
        raise click.UsageError(str(e)) from None


@click.command("watch")
@click.argument("path", type=click.Path(path_type=Path), default=".", required=False)
@click.option(
    "--repo",
    metavar="PATH_OR_URL",
    help="Follow a git repository instead of a directory: a URL is cloned into the "
    "state directory; a local path (bare or not) is read as it is. PATH is then "
    "the config directory inside the repository.",
)
@click.option("--ref", default="main", show_default=True, help="Branch to follow (--repo).")
@click.option(
    "--drift",
    type=click.Choice(["report", "correct", "propose"]),
    default=None,
    help="What a run does with records changed outside provgit: report holds them "
    "until a person decides, correct overwrites them, propose (--repo) holds them and "
    "commits them to a drift branch for review (default: `drift.mode` of "
    "provgit.yaml, else report).",
)
@resync_option
@click.option(
    "--fetch-seconds",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Fetch the repository this often (--repo; 0: only on POST /reconcile). "
    "A local repository is also watched: a new commit is seen as git writes its ref.",
)
@click.option(
    "--ref-check-seconds",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Re-read a local repository's ref this often even without a file event "
    "(--repo on a local path; a safety net for missed events). 0: do not watch the "
    "refs at all (new commits only through --fetch-seconds and POST /reconcile).",
)
@click.option(
    "--debounce-ms",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Quiet time after a file change before reconciling (directory mode).",
)
@host_option
@allowed_host_option
@port_option
@click.option(
    "--token-env",
    default="PROVGIT_WATCH_TOKEN",
    show_default=True,
    help="Environment variable holding the bearer token for POST /reconcile (and for "
    "every request when --host is not a loopback address).",
)
@click.option(
    "--webhook-secret-env",
    default="PROVGIT_WEBHOOK_SECRET",
    show_default=True,
    help="Environment variable holding the secret of a GitHub or GitLab webhook: "
    "POST /reconcile then also takes a delivery signed (X-Hub-Signature-256) or "
    "tokened (X-Gitlab-Token) with it.",
)
@click.option(
    "--webhook-secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A file (outside the config repository) whose first line is the webhook "
    "secret, instead of --webhook-secret-env.",
)
@log_format_option
@click.option("--debug", is_flag=True, help="Log more (file change batches).")
@click.option(
    "--stop-timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="On SIGTERM, how long to wait for element writes in flight.",
)
@click.option(
    "--lease-seconds",
    type=click.FloatRange(min=1, max=3600),
    default=None,
    help="With a PostgreSQL journal: how long an element's lease lasts without renewal "
    "(default: journal.lease_seconds of provgit.yaml, else 15).",
)
@plan_options
@state_dir_option
def command(
    path: Path,
    repo: str | None,
    ref: str,
    drift: str | None,
    resync_seconds: float,
    fetch_seconds: float,
    ref_check_seconds: float,
    debounce_ms: int,
    host: str,
    allowed_hosts: tuple[str, ...],
    port: int,
    token_env: str,
    webhook_secret_env: str,
    webhook_secret_file: Path | None,
    log_format: str,
    debug: bool,
    stop_timeout: float,
    lease_seconds: float | None,
    elements: tuple[str, ...],
    prune: bool,
    allow_mass_delete: bool,
    allow_mass_update: bool,
    state_dir: str | None,
) -> int:
    """Keep the network in sync with PATH (a directory) or a git ref, continuously.

    Reconciles on every saved change (or new commit of --ref with --repo), one
    run at a time; a config that fails validation is refused and the last
    good one stays applied. Pending updates are retried on their schedule,
    drift is found by a periodic resync and reported or corrected (--drift).

    A status server answers on --host/--port: / (live page), /status.json,
    /feed.atom, /metrics (Prometheus), /healthz, POST /reconcile (webhook:
    bearer token, GitHub signature or GitLab token). SIGTERM/SIGINT finish
    the writes in flight and exit 0; SIGHUP re-reads the config and drops
    every cache.
    """
    token, secret = _credentials(host, token_env, webhook_secret_env, webhook_secret_file)
    config, sdir, subdir = _where(path, repo, ref, state_dir)
    options = WatchOptions(
        config=config.resolve(),
        state_dir=sdir.resolve(),
        repo=repo,
        ref=ref,
        subdir=subdir,
        drift=_drift_mode(drift, repo),
        resync_seconds=resync_seconds,
        fetch_seconds=fetch_seconds,
        ref_check_seconds=ref_check_seconds,
        step_ms=debounce_ms,
        host=host,
        allowed_hosts=allowed_hosts,
        port=port,
        token=token,
        webhook_secret=secret,
        stop_timeout=stop_timeout,
        lease_seconds=lease_seconds,
        plan=PlanOptions(prune, allow_mass_delete, allow_mass_update, elements),
    )
    # The cyclic GC stays off during runs (as for batch commands: it doubles the
    # cost of building 100,000 users); the loop collects between runs instead.
    log = Log(log_format, debug=debug)
    journal_pool.on_exhausted(lambda info: log.warning("journal_pool_exhausted", **info))
    watcher = Watcher(options, log)
    try:
        aio.run(watcher.run(functools.partial(_ready, log_format)))
    except FollowError as e:
        raise click.ClickException(str(e)) from None
    except JournalError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"cannot start: {e.strerror or e}") from None
    return exitcodes.OK


def _ready(log_format: str, url: str) -> None:
    # On stdout, where scripts read the URL from; in the log format asked for,
    # so a JSON log collector never meets a plain line.
    if log_format == "json":
        Log("json", stream=sys.stdout).info("listening", url=url)
    else:
        click.echo(f"listening on {url}")


def _drift_mode(drift: str | None, repo: str | None) -> DriftMode | None:
    if drift == "propose" and repo is None:
        raise click.UsageError(
            "--drift propose commits drift to a branch of the config repository: "
            "it needs --repo (watch a git repository, not a directory)"
        )
    modes: dict[str, DriftMode] = {"report": "report", "correct": "correct", "propose": "propose"}
    return modes.get(drift) if drift else None
