"""The `ldap` driver's revisions: an entry's `entryCSN` as an integer, and back."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime

# An entryCSN is `YYYYmmddHHMMSS.ffffffZ#count#sid#mod`. The revision is the
# microseconds since the epoch times 1000 plus the count: ordered as the CSNs
# are, and inside a signed 64-bit integer (the journal's column) for centuries.


def csn_revision(csn: str) -> int:
    # Sliced by hand: datetime.strptime was half the cost of decoding a read entry.
    if not csn[:14].isdigit() or csn[14:15] != "." or csn[21:22] != "Z":
        raise ValueError(f"not an entryCSN: {csn!r}")
    y, mo, d = int(csn[0:4]), int(csn[4:6]), int(csn[6:8])
    h, mi, sec = int(csn[8:10]), int(csn[10:12]), int(csn[12:14])
    fraction = int(csn[15:21])
    count = int(csn[23:].partition("#")[0] or "0", 16) if csn[22:23] == "#" else 0
    seconds = (_day(y, mo, d) * 24 + h) * 3600 + mi * 60 + sec
    return (seconds * 1_000_000 + fraction) * 1000 + min(count, 999)


@functools.lru_cache(maxsize=4096)
def _day(year: int, month: int, day: int) -> int:
    """Days since the epoch (a full read's CSNs share a few days: cached)."""
    return date(year, month, day).toordinal() - _EPOCH_DAY


_EPOCH_DAY = date(1970, 1, 1).toordinal()


def stamp(revision: int) -> datetime:
    micros = revision // 1000
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


def csn_bounds(revision: int) -> tuple[str, str]:
    when = stamp(revision).strftime("%Y%m%d%H%M%S.%fZ")
    count = f"{revision % 1000:06x}"
    return f"{when}#{count}#000#000000", f"{when}#{count}#fff#ffffff"
