"""Pick an element's driver by name: built-ins first, then entry points.

Third-party drivers register a class (or factory) taking a `DriverConfig` in
the `provgit.drivers` entry point group, the same group the built-ins declare.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from provgit.drivers.base import DriverConfig
from provgit.model.network import DEFAULT_DRIVER as DEFAULT_DRIVER
from provgit.wire.protocol import Driver

ENTRY_POINT_GROUP = "provgit.drivers"
# Imported lazily so picking `embedded` never imports aiohttp.
BUILTINS: dict[str, str] = {
    "embedded": "provgit.drivers.embedded:EmbeddedDriver",
    "http": "provgit.drivers.http:HttpDriver",
}

DriverFactory = Callable[[DriverConfig], Driver]


class UnknownDriverError(ValueError):
    """No built-in or installed driver has that name."""


def _load(target: str) -> DriverFactory:
    module, _, attr = target.partition(":")
    return cast(DriverFactory, getattr(importlib.import_module(module), attr))


def known_drivers() -> list[str]:
    from importlib.metadata import entry_points

    names = set(BUILTINS)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def make_driver(config: DriverConfig, driver: str | None = None) -> Driver:
    """The driver for one element: `driver`, else `settings["driver"]`, else embedded."""
    name = driver or str(config.settings.get("driver") or DEFAULT_DRIVER)
    if name in BUILTINS:
        factory = _load(BUILTINS[name])
    else:
        # Only for a plugin: importing the metadata reader is ~40 ms.
        from importlib.metadata import entry_points

        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            raise UnknownDriverError(
                f"element {config.element}: unknown driver {name!r}; known drivers: "
                + ", ".join(known_drivers())
            )
        try:
            factory = cast(DriverFactory, found[0].load())
        except Exception as e:  # a broken plugin must not look like a provgit crash
            raise UnknownDriverError(
                f"element {config.element}: driver {name!r} failed to load: {e}"
            ) from e
    return factory(config)
