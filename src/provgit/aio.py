"""One way to run a coroutine from synchronous code: `run(coro)`.

Why not `asyncio.run` directly: on Python 3.11, `asyncio.run` installs a
SIGINT handler that holds the main task, and on the way out
`signal.getsignal` formats that handler with `%r` (enum lookup of a
non-enum value), which builds `reprlib.repr` of the task's result. Our
results hold the whole config (plans, observations), so a repr of tens of
megabytes was built and thrown away: a quarter of a no-op reconcile. Here the
main task's result is always None; the coroutine's value is kept aside.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coro)`, without a repr of its result (see the module doc)."""
    box: list[T] = []

    async def main() -> None:
        box.append(await coro)

    asyncio.run(main())
    return box[0]
