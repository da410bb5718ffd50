"""Where the journal lives: the state directory's SQLite file (the default) or
a PostgreSQL database named by a URL.

The URL comes from `--journal-url` (`use_journal_url`), else the
`PROVGIT_JOURNAL_URL` environment variable, else `journal.url` in
provgit.yaml (`configure_from_settings`). The password is best kept out of
the URL: `journal.password` in provgit.yaml is a secret reference.
"""

from __future__ import annotations

import contextvars
import os
import re
from dataclasses import dataclass, replace

ENV = "PROVGIT_JOURNAL_URL"


@dataclass(frozen=True)
class JournalLocation:
    url: str
    password: str | None = None
    problem: str | None = None  # why the password could not be read (said on opening)
    # A fleet's network: its journal's tables in this PostgreSQL schema (`network_schema`).
    schema: str | None = None
    # The most connections this process opens to the database (journal.pool_size; pool.py).
    pool_size: int | None = None

    def __repr__(self) -> str:
        # Never the password, whichever way it came.
        from provgit.journal.postgres import redact

        return f"JournalLocation({redact(self.url, self.password)!r})"


class NetworkWithoutJournal(Exception):
    """`--network NAME` with no PostgreSQL journal to find the network in: the
    state directory's file is not that network's journal, so nothing is read
    from or written to it (a usage error)."""

    def __init__(self, network: str) -> None:
        super().__init__(
            f"--network {network} names a fleet network, whose journal is in a PostgreSQL "
            "database, but no journal URL is given: pass --journal-url postgresql://…, "
            f"set ${ENV}, or set journal.url in provgit.yaml (or leave out --network "
            "for the state directory's own journal)"
        )


_given: JournalLocation | None = None
_configured: JournalLocation | None = None
_network: str | None = None  # `--network`: one network of a fleet
_pool_size: int | None = None  # provgit.yaml's journal.pool_size, whichever URL wins
# A fleet runs many networks' watchers in one process: each runs in a context
# (its asyncio task, and the threads it hands work to) naming its own journal.
_scoped: contextvars.ContextVar[JournalLocation | None] = contextvars.ContextVar(
    "provgit_journal", default=None
)
# PostgreSQL cuts identifiers at 63 bytes without an error: with the 12 of
# "provgit_net_", a longer name would share its schema with every name that
# starts with the same 51 characters.
_NETWORK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,50}$")


def network_schema(network: str) -> str:
    """The PostgreSQL schema of a fleet network's journal. Network names are
    [a-z0-9-] (the fleet file's schema), so `-` -> `_` keeps them apart and
    the result needs no quoting."""
    if not _NETWORK_NAME.match(network):
        raise ValueError(
            f"not a fleet network name: {network!r} (a-z, 0-9 and '-', at most 51 characters)"
        )
    return "provgit_net_" + network.replace("-", "_")


def for_network(location: JournalLocation, network: str) -> JournalLocation:
    return replace(location, schema=network_schema(network))


def use_scoped(location: JournalLocation | None) -> None:
    """The journal of the current context (a fleet network's watcher task)."""
    _scoped.set(location)


def use_network(network: str | None) -> None:
    """`--network NAME`: one network of a fleet, in the journal given otherwise."""
    global _network
    _network = network


def use_journal_url(url: str | None) -> None:
    """The journal URL given on the command line (None: none given)."""
    global _given
    _given = JournalLocation(url) if url else None


def configure(
    url: str | None,
    password: str | None = None,
    problem: str | None = None,
    pool_size: int | None = None,
) -> None:
    """The journal URL (and password, or why it is not readable, and the pool's
    bound) of provgit.yaml's `journal:`; the command line and the environment
    take precedence for the URL."""
    global _configured, _pool_size
    _pool_size = pool_size
    _configured = JournalLocation(url, password, problem, pool_size=pool_size) if url else None


def journal_location() -> JournalLocation | None:
    """The PostgreSQL journal to use, or None for the state directory's file
    (NetworkWithoutJournal: a fleet network is named, and no database)."""
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    found = _unscoped()
    if _network is None:
        return found
    if found is None:
        raise NetworkWithoutJournal(_network)
    return for_network(found, _network)


def _unscoped() -> JournalLocation | None:
    if _given is not None:
        return replace(_given, pool_size=_pool_size)
    env = os.environ.get(ENV, "").strip()
    if env:
        return JournalLocation(env, pool_size=_pool_size)
    return _configured
