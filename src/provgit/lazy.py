"""A package's exports loaded on first use (PEP 562).

Importing any submodule runs its package's `__init__` first, so a package
that imported its heavy modules there would load them for every light user
(a status loading the plan computation, the apply engine)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, where: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """The package's module `__getattr__`: each name in `where` imported from
    the module it names on first use, then kept in `namespace` (the package's
    globals), so later reads never come here again."""

    def __getattr__(name: str) -> Any:
        try:
            module = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
