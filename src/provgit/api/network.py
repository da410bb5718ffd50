"""Connecting to the elements and reading them: config -> drivers -> observations.

Internal to the API (`provgit.api`); the watcher reaches it through
`provgit.api.watching`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from provgit.apply.result import ApplyResult
from provgit.drivers.base import Driver, DriverConfig
from provgit.drivers.registry import make_driver
from provgit.model.state import DesiredState
from provgit.observe import (
    Observation,
    ObservationCache,
    ObservedState,
    Write,
    observe,
    with_writes,
)
from provgit.plan import Plan
from provgit.projection import Target, project
from provgit.records import Fields
from provgit.secrets import Fingerprinter, SecretUnavailable, network_key, resolve

# Directories (os.pathsep-separated) where an embedded element's file may live
# outside the state directory: set by whoever runs provgit on the host, never
# by the repository (whose `allow_outside_state_dir` alone would let a pull
# request open any SQLite file provgit may write, e.g. another network's store).
ELEMENT_FILES_ENV = "PROVGIT_ELEMENT_FILES_DIR"


def operator_allows(path: Path) -> bool:
    """Whether `path` (followed through symlinks) is inside a directory the
    environment names in PROVGIT_ELEMENT_FILES_DIR."""
    named = [d for d in os.environ.get(ELEMENT_FILES_ENV, "").split(os.pathsep) if d.strip()]
    try:
        real = path.resolve()
        return any(real.is_relative_to(Path(d).expanduser().resolve()) for d in named)
    except (OSError, RuntimeError):  # a symlink loop: not allowed
        return False


@dataclass
class Network:
    drivers: dict[str, Driver]
    # Elements that cannot even be contacted (e.g. their token is not set), with why.
    unavailable: dict[str, str]

    async def close(self) -> None:
        await asyncio.gather(*(d.close() for d in self.drivers.values()), return_exceptions=True)


# Within `values_digested_once`: each key's values digests, shared by every
# fingerprinter made meanwhile (a plan after a config change checks the memo
# twice, each time digesting the values of the same 20,000 PINs).
_DIGESTS: ContextVar[dict[bytes, dict[tuple[str, ...], tuple[str, list[str]]]] | None] = ContextVar(
    "values_digests", default=None
)


@contextlib.contextmanager
def values_digested_once() -> Iterator[None]:
    """Within: a values digest (`Fingerprinter.values_digest`) is computed once
    per key and references; for one command, whose secret values do not change."""
    token = _DIGESTS.set({})
    try:
        yield
    finally:
        _DIGESTS.reset(token)


def fingerprinter(
    state: DesiredState, state_dir: Path, resolve_values: bool = True
) -> Fingerprinter:
    if not resolve_values:
        return Fingerprinter(None, resolve_values=False)
    key = network_key(state.settings.secret_key, state_dir)
    assert key is not None  # made when missing
    found = Fingerprinter(key.secret)
    if (shared := _DIGESTS.get()) is not None:
        found.share_values(shared.setdefault(key.secret, {}))
    return found


def desired_target(
    state: DesiredState,
    read_other: Callable[[str], bytes | None],
    state_dir: Path,
    resolve_secrets: bool = True,
) -> Target:
    return project(state, fingerprinter(state, state_dir, resolve_secrets), read_other)


def connect(
    state: DesiredState, state_dir: Path, config_root: Path, only: Sequence[str] = ()
) -> Network:
    drivers: dict[str, Driver] = {}
    unavailable: dict[str, str] = {}
    for name, e in state.elements.items():
        if only and name not in only:
            continue
        settings: dict[str, object] = {
            "driver": e.driver,
            "timeout": e.connection.timeout,
            "request_deadline": e.connection.request_deadline,
            "concurrency": e.connection.concurrency,
            **e.connection.options,
        }
        if e.connection.url:
            settings["url"] = e.connection.url
        if e.directory is not None:
            settings["directory"] = e.directory.model_dump()
        if e.connection.path:
            # Relative to the state directory, and (validation checked the text)
            # still inside it once symlinks are followed, unless allowed out.
            p = state_dir / Path(e.connection.path).expanduser()
            try:
                inside = p.resolve().is_relative_to(state_dir.resolve())
            except (OSError, RuntimeError):  # a symlink loop: the driver says so
                inside = True
            if not inside and not e.connection.allow_outside_state_dir:
                unavailable[name] = (
                    f"connection.path {e.connection.path!r} leads outside the state directory "
                    f"{state_dir} (through a symlink); set allow_outside_state_dir: true "
                    "to use it"
                )
                continue
            if not inside and not operator_allows(p):
                unavailable[name] = (
                    f"connection.path {e.connection.path!r} is outside the state directory "
                    f"{state_dir} and outside every directory named in {ELEMENT_FILES_ENV} "
                    "on this host: the config's allow_outside_state_dir counts only there (a "
                    "repository alone cannot choose a file elsewhere on this host); set "
                    f"{ELEMENT_FILES_ENV} in the environment of provgit to the directory"
                )
                continue
            settings["path"] = str(p)
        if e.connection.token is not None:
            try:
                settings["token"] = resolve(e.connection.token)
            except SecretUnavailable as err:
                unavailable[name] = f"token {e.connection.token.describe()}: {err}"
                continue
        config = DriverConfig(name, e.type, settings, str(state_dir))
        try:
            drivers[name] = make_driver(config)
        except Exception as err:  # a third-party driver failing to start is that element's problem
            unavailable[name] = f"driver {e.driver!r} could not start: {err}"
    return Network(drivers, unavailable)


async def observe_network(
    network: Network,
    state_dir: Path,
    incremental: bool = True,
    previous: Mapping[str, Observation] | None = None,
    save: bool = True,
    full: Collection[str] = (),
    expected: Mapping[str, Mapping[str, Mapping[str, Fields]]] | None = None,
) -> dict[str, Observation]:
    """Every element's observation, refreshed from `previous` (default: the
    observation cache) through the change feeds, and read in full for those
    in `full` (verifying the feed); elements that could not even be contacted
    are marked unauthorized with why. `expected`: the projection's records
    (`observe`: what a full read finds equal is held once)."""
    cache = ObservationCache(state_dir)
    if previous is None:
        previous = cache.load_all(list(network.drivers)) if incremental else {}
    observed = await observe(network.drivers, previous, full=full, expected=expected)
    if save:
        # A failed reading is marked as such; the last good one is kept.
        cache.save_all(observed, previous)
    for name, why in network.unavailable.items():
        # A token that is not set: the element would refuse us ("token
        # refused"); a driver that would not start is an error of its own.
        state: ObservedState = "unauthorized" if why.startswith("token ") else "error"
        observed[name] = Observation(name, state, None, error=why)
        if save:
            cache.mark_down(observed[name])
    # An element found down keeps what it last held, so its planned writes
    # can be queued as pending updates at once.
    for name, o in observed.items():
        if not o.ok:
            last = previous.get(name) if name in previous else cache.load(name)
            observed[name] = o.with_last_known(last)
    return observed


def landed_writes(plan: Plan, result: ApplyResult) -> dict[str, list[Write]]:
    """Per element, the writes of `plan` that `result` says landed."""
    out: dict[str, list[Write]] = {}
    for e in result.elements:
        ok = {(r.collection, r.key): r.revision for r in e.operations if r.status == "ok"}
        ep = plan.element(e.element) if ok else None
        if ep is None:
            continue
        out[e.element] = [
            (op.collection, op.key, None if op.action == "delete" else op.fields, ok[ref])
            for op in ep.operations
            if (ref := (op.collection, op.key)) in ok
        ]
    return out


def remember_writes(
    state_dir: Path,
    plan: Plan,
    result: ApplyResult,
    observations: dict[str, Observation] | None = None,
) -> None:
    """Keep each element's last observation true after an apply: in
    `observations` (the watcher's, in memory), else in the observation cache."""
    landed = landed_writes(plan, result)
    if observations is not None:
        for name, writes in landed.items():
            if name in observations:
                observations[name] = with_writes(observations[name], writes)
        return
    cache = ObservationCache(state_dir)
    for name, writes in landed.items():
        with contextlib.suppress(OSError):
            cache.record_writes(name, writes)
