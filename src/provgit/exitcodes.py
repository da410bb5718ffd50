"""Process exit codes, as documented in the README (and DESIGN.md)."""

OK = 0  # in sync, valid, or applied
INVALID = 1  # invalid input or usage
CHANGES = 2  # changes pending (plan/diff with --detailed-exitcode)
REFUSED = 3  # refused for safety (stale plan, threshold, lock, queue cap); nothing applied
APPLIED_WITH_ERRORS = 4
