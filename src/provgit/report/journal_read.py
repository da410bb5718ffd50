"""What the status derivation reads from the journal (pending updates,
distribution errors, element rows, provgit's acknowledged writes), through the
journal's read-only reader: a report runs beside writers, and never migrates,
creates or locks the file. A journal that is missing, damaged, busy or newer
reads as what could be read before the error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from provgit.journal import DistributionError, JournalReader, PendingUpdate, read_journal
from provgit.report.states import Ref, Write


@dataclass
class JournalFacts:
    pending: dict[tuple[str, str, str], PendingUpdate]
    errors: dict[tuple[str, str, str], DistributionError]
    # element -> (state, detail, time) as the last run left it
    element_rows: dict[str, tuple[str, str | None, float]]
    # element -> (collection, key) -> provgit's last acknowledged write newer
    # than the element's observation
    writes_after: dict[str, dict[Ref, Write]]
    path: Path | None = None
    # (element, collection, key) -> the branch its drift is proposed on
    proposed: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # Drift of a proposal closed unmerged: the config wins, the next run overwrites it.
    rejected: set[tuple[str, str, str]] = field(default_factory=set)

    def last_writes(self, element: str, refs: Iterable[Ref]) -> dict[Ref, Write]:
        """provgit's last acknowledged write of each of these records (any age)."""
        wanted = list(dict.fromkeys(refs))
        if not wanted or self.path is None:
            return {}
        return read_journal(
            self.path, lambda journal: journal.acknowledged_writes(element, wanted), {}
        )


def element_rows(journal_path: Path) -> dict[str, tuple[str, str | None, float]]:
    """Each element's state as the last run left it: (state, detail, time)."""
    return read_journal(journal_path, JournalReader.element_states, {})


def journal_facts(journal_path: Path, observed_revisions: Mapping[str, int | None]) -> JournalFacts:
    """Everything the derivation needs from the journal; what could be read
    before an error."""
    facts = JournalFacts({}, {}, {}, {}, journal_path)

    def read(journal: JournalReader) -> None:
        for p in journal.pending():
            facts.pending[(p.element, p.collection, p.key)] = p
        for de in journal.distribution_errors():
            facts.errors[(de.element, de.collection, de.key)] = de
        facts.element_rows.update(journal.element_states())
        for d in journal.drift_items():
            if d.state == "captured" and d.note:
                facts.proposed[(d.element, d.collection, d.key)] = d.note
            elif d.state == "rejected":
                facts.rejected.add((d.element, d.collection, d.key))
        for name, revision in observed_revisions.items():
            if revision is None:
                continue
            # provgit's acknowledged writes the observation does not show yet.
            after = journal.acknowledged_writes_after(name, revision)
            if after:
                facts.writes_after[name] = after

    read_journal(journal_path, read, None)
    return facts


def element_revisions(path: Path) -> dict[str, int]:
    """The last revision each element answered a provgit write with."""
    return read_journal(path, JournalReader.last_revisions, {})
