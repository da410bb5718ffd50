"""The `ldap` driver's calls, each bounded by `connection.request_deadline`.

python-ldap and ldap3 block in a worker thread; their timeouts are per read,
so a directory that sends a byte inside each of them, or never answers a
search, holds the call (and the run) for ever. `in_thread` awaits a call at
most the deadline. Not asyncio.to_thread: a thread stuck on such a server
would hold the default executor, and asyncio.run waits for it at its end;
this one is a daemon thread, and the driver cuts its sockets to end it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def in_thread(run: Callable[[], T], deadline: float, name: str) -> T:
    """`run()` in a daemon thread named `name`, awaited at most `deadline`
    seconds (TimeoutError past it; the thread is left to end by itself)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    # Answered after the deadline: nobody waits, the error is not "unretrieved".
    done.add_done_callback(lambda f: f.cancelled() or f.exception())

    context = contextvars.copy_context()  # as asyncio.to_thread does

    def work() -> None:
        try:
            result = context.run(run)
        except BaseException as e:  # handed to the awaiting coroutine
            settle = functools.partial(_settle, done, None, e)
        else:
            settle = functools.partial(_settle, done, result, None)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            loop.call_soon_threadsafe(settle)

    threading.Thread(target=work, name=name, daemon=True).start()
    return await asyncio.wait_for(asyncio.shield(done), deadline)


def _settle(done: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)  # type: ignore[arg-type]
