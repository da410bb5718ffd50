"""Journal operations of `provgit journal`: moving a state directory's journal
to a shared PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

from provgit.api.errors import JournalUnavailable
from provgit.journal.schema import JournalError
from provgit.journal.transfer import Transfer, migrate_to_postgres


def migrate_journal(
    state_dir: Path, url: str, password: str | None, *, force: bool = False
) -> Transfer:
    """Copy the journal of `state_dir` into the PostgreSQL database at `url`
    (all or nothing; a non-empty target is refused unless `force`)."""
    try:
        return migrate_to_postgres(state_dir, url, password, force=force)
    except JournalError as e:
        raise JournalUnavailable(str(e)) from None
