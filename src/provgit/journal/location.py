"""Where the journal lives: the state directory's SQLite file (the default) or
a PostgreSQL database named by a URL.

The URL comes from `--journal-url` (`use_journal_url`), else the
`PROVGIT_JOURNAL_URL` environment variable, else `journal.url` in
provgit.yaml (`configure_from_settings`). The password is best kept out of
the URL: `journal.password` in provgit.yaml is a secret reference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV = "PROVGIT_JOURNAL_URL"


@dataclass(frozen=True)
class JournalLocation:
    url: str
    password: str | None = None
    problem: str | None = None  # why the password could not be read (said on opening)

    def __repr__(self) -> str:
        # Never the password, whichever way it came.
        from provgit.journal.postgres import redact

        return f"JournalLocation({redact(self.url, self.password)!r})"


_given: JournalLocation | None = None
_configured: JournalLocation | None = None


def use_journal_url(url: str | None) -> None:
    """The journal URL given on the command line (None: none given)."""
    global _given
    _given = JournalLocation(url) if url else None


def configure(url: str | None, password: str | None = None, problem: str | None = None) -> None:
    """The journal URL (and password, or why it is not readable) of
    provgit.yaml's `journal:`; the command line and the environment take precedence."""
    global _configured
    _configured = JournalLocation(url, password, problem) if url else None


def journal_location() -> JournalLocation | None:
    """The PostgreSQL journal to use, or None for the state directory's file."""
    if _given is not None:
        return _given
    env = os.environ.get(ENV, "").strip()
    if env:
        return JournalLocation(env)
    return _configured
