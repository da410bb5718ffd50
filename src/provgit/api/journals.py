"""Opening the journal for the API's commands. Internal to the API.

Apart from `running` (the apply engine, the drivers, the report writers), so
`provgit status` and the suspensions open the journal without loading those.
"""

from __future__ import annotations

from pathlib import Path

from provgit.api.errors import JournalUnavailable
from provgit.journal import Journal, JournalError
from provgit.journal.db import FILENAME, journal_exists


def open_journal(state_dir: Path) -> Journal:
    """The journal, created when there is none yet."""
    try:
        return Journal.open(state_dir)
    except JournalError as e:
        raise JournalUnavailable(str(e)) from None


def existing_journal(config: Path, state_dir: Path) -> Journal:
    """The journal of past runs; reading must not create state (a mistyped
    path would otherwise answer "no errors")."""
    path = state_dir / FILENAME
    if not journal_exists(state_dir):
        raise JournalUnavailable(
            f"no runs recorded for {config} (no journal in {state_dir}); "
            "run `provgit reconcile` or `provgit apply` first"
        )
    try:
        return Journal(path)
    except JournalError as e:
        raise JournalUnavailable(str(e)) from None
