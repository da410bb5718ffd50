"""Process exit codes, as documented in the README (and DESIGN.md)."""

OK = 0  # in sync, valid, or applied
INVALID = 1  # invalid input or usage
CHANGES = 2  # changes pending (plan/diff with --detailed-exitcode)
REFUSED = 3  # refused for safety (stale plan, threshold, lock, queue cap); nothing applied
# applied with errors: distribution errors, or pending updates left (an element
# down, locked or token refused: its writes are kept and retried)
APPLIED_WITH_ERRORS = 4
# incomplete: some elements could not be observed, so the answer does not cover
# them (plan; `--allow-unreachable` opts out and answers 0/2 for the rest)
INCOMPLETE = 5
# stopped by SIGTERM (128 + 15, as a shell reports it): journaled as interrupted, not an error
INTERRUPTED = 143


class Interrupted(Exception):
    """A run stopped by SIGTERM, journaled as interrupted; the CLI exits INTERRUPTED."""
