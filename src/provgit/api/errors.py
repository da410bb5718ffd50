"""The errors the library API raises. None of them prints or exits; the CLI
turns each into its message and exit code (see provgit.cli.common)."""

from __future__ import annotations

from collections.abc import Sequence

from provgit.diagnostics import Diagnostic
from provgit.exitcodes import Interrupted


class ProvgitError(Exception):
    """Something stopped the operation before it changed anything it should not
    have; the message says what and how to fix it (`provgit` exits 1)."""


class UsageProblem(ProvgitError):
    """The caller asked for something that cannot be: a missing directory, an
    unknown element or kind, a flag that does not go with a saved plan."""


class ConfigNotFound(UsageProblem):
    """No config at the path given (missing, not a directory, no provgit.yaml)."""


class InvalidConfig(ProvgitError):
    """The config does not validate; nothing was planned or changed."""

    def __init__(self, root: str, diagnostics: Sequence[Diagnostic]) -> None:
        self.root = root
        self.diagnostics = list(diagnostics)
        errors = sum(1 for d in self.diagnostics if d.severity == "error")
        super().__init__(f"{errors} problem(s) in the config at {root}")


class JournalUnavailable(ProvgitError):
    """The journal of past runs cannot be opened (or there is none yet where one must be)."""


class PlanRefused(ProvgitError):
    """A saved plan refused before anything was contacted or applied: its
    signature does not hold, or planning the config would not allow it."""

    def __init__(self, plan_file: str, problems: Sequence[str]) -> None:
        self.plan_file = plan_file
        self.problems = list(problems)
        super().__init__(f"{plan_file}: " + "; ".join(self.problems))


class NothingToDo(ProvgitError):
    """A distribution-error action that found nothing it may act on (e.g. retry
    of conflicts only, force of errors that are not conflicts); `skipped` says why
    for each one left out."""

    def __init__(self, message: str, skipped: Sequence[str]) -> None:
        self.skipped = list(skipped)
        super().__init__(message)


__all__ = [
    "ConfigNotFound",
    "Interrupted",
    "InvalidConfig",
    "JournalUnavailable",
    "NothingToDo",
    "PlanRefused",
    "ProvgitError",
    "UsageProblem",
]
