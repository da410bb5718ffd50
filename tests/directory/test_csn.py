"""An entry's entryCSN as a revision: ordered as the CSNs are, and back to the
bounds the conditional writes assert."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from provgit.drivers.ldap_csn import csn_bounds, csn_revision, stamp


@pytest.mark.parametrize(
    "csn",
    [
        "20261130055901.123456Z#00000a#000#000000",
        "19991231235959.999999Z#000000#001#000000",
        "20240229000000.000000Z#0003e7#fff#ffffff",
    ],
)
def test_a_csn_revision_is_its_microseconds_times_1000_plus_its_count(csn: str) -> None:
    when = datetime.strptime(csn.partition("#")[0], "%Y%m%d%H%M%S.%fZ").replace(tzinfo=UTC)
    count = int(csn.split("#")[1], 16)
    micros = int(when.timestamp()) * 1_000_000 + when.microsecond

    revision = csn_revision(csn)

    assert revision == micros * 1000 + min(count, 999)
    assert stamp(revision) == when
    low, high = csn_bounds(revision)
    assert low <= csn <= high


def test_later_csns_give_larger_revisions() -> None:
    csns = [
        "20261130055901.123456Z#000000#000#000000",
        "20261130055901.123456Z#000001#000#000000",
        "20261130055901.123457Z#000000#000#000000",
        "20261201000000.000000Z#000000#000#000000",
    ]
    revisions = [csn_revision(c) for c in csns]
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)


def test_a_value_that_is_not_a_csn_is_refused() -> None:
    with pytest.raises(ValueError, match="not an entryCSN"):
        csn_revision("2026-11-30T05:59:01Z")
