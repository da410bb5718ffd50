"""Wiring shared by the commands and the watch loop: config -> drivers -> observations.

Only composition lives here; each step calls one stage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from provgit.drivers.base import Driver, DriverConfig
from provgit.drivers.registry import make_driver
from provgit.model.settings import Settings
from provgit.model.state import DesiredState
from provgit.observe import Observation, ObservationCache, observe
from provgit.plan import Plan, PlanOptions, compute_plan
from provgit.secrets import Fingerprinter, SecretUnavailable, local_key, resolve
from provgit.source import ConfigSource
from provgit.target import Target, project


@dataclass
class Network:
    drivers: dict[str, Driver]
    # Elements that cannot even be contacted (e.g. their token is not set), with why.
    unavailable: dict[str, str]

    async def close(self) -> None:
        await asyncio.gather(*(d.close() for d in self.drivers.values()), return_exceptions=True)


def fingerprinter(
    state: DesiredState, state_dir: Path, resolve_values: bool = True
) -> Fingerprinter:
    if not resolve_values:
        return Fingerprinter(None, resolve_values=False)
    key: bytes
    if state.settings.secret_key is not None:
        try:
            key = resolve(state.settings.secret_key).encode()
        except SecretUnavailable:
            key = local_key(state_dir)
    else:
        key = local_key(state_dir)
    return Fingerprinter(key)


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
            "concurrency": e.connection.concurrency,
            **e.connection.options,
        }
        if e.connection.url:
            settings["url"] = e.connection.url
        if e.connection.path:
            p = Path(e.connection.path)
            settings["path"] = str(p if p.is_absolute() else config_root / p)
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
    network: Network, state_dir: Path, incremental: bool = True
) -> dict[str, Observation]:
    cache = ObservationCache(state_dir)
    previous = cache.load_all(list(network.drivers)) if incremental else {}
    observed = await observe(network.drivers, previous)
    cache.save_all({n: o for n, o in observed.items() if o.ok}, previous)
    for name, why in network.unavailable.items():
        observed[name] = Observation(name, "unauthorized", None, error=why)
    return observed


@dataclass(frozen=True)
class PlanRun:
    plan: Plan
    state: DesiredState
    target: Target
    source: ConfigSource

    @property
    def settings(self) -> Settings:
        return self.state.settings


async def plan_network(
    state: DesiredState,
    source: ConfigSource,
    config_root: Path,
    state_dir: Path,
    options: PlanOptions,
) -> PlanRun:
    """target + observe + plan for a validated config."""
    target = desired_target(state, source.read_other, state_dir)
    network = connect(state, state_dir, config_root, options.elements)
    try:
        observed = await observe_network(network, state_dir)
    finally:
        await network.close()
    plan = compute_plan(
        target,
        observed,
        state.settings,
        {n: e.type for n, e in state.elements.items()},
        options,
        commit=source.commit,
        source=str(config_root),
    )
    return PlanRun(plan, state, target, source)
