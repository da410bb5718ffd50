"""Element names that end like the observation cache's side files
(`<element>.writes.marshal`, `.revision`, `.fullread`, `.missed`, `.down`):
an element named `cs1.writes` beside `cs1` had its cached observation in the
file that holds the writes landed on cs1, each overwriting the other; the
second reconcile ended in a traceback (ValueError in with_writes), and so did
every later one. Refused at validation now. Real simulator processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provgit import exitcodes

from .helpers import Sim, cli, start_sims, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def twins(tmp_path: Path) -> Iterator[list[Sim]]:
    started = start_sims(tmp_path, [("cs1", "mivb"), ("cs1.writes", "mivb")])
    try:
        yield started
    finally:
        for s in started:
            s.stop()


def test_an_element_named_like_another_elements_cache_file_is_refused(
    twins: list[Sim], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", twins, users=3)
    r = cli("validate", str(config))
    assert r.code == exitcodes.INVALID, r.out + r.err
    assert "'cs1.writes'" in r.out + r.err and "net.yaml:" in r.out + r.err, r.out + r.err
    assert "Traceback" not in r.out + r.err
    for _ in range(2):
        r = cli("reconcile", str(config))
        assert r.code == exitcodes.INVALID, r.out + r.err
        assert all(not s.records().get("users") for s in twins)  # nothing written


def test_an_element_name_with_a_dot_alone_is_still_valid(tmp_path: Path) -> None:
    (pbx,) = start_sims(tmp_path, [("pbx.down", "mivb")])  # no element "pbx": no clash
    try:
        config = write_config(tmp_path / "config", [pbx], users=2)
        assert cli("reconcile", str(config)).code == 0
        assert cli("reconcile", str(config)).code == 0
        assert cli("status", str(config)).code == 0
    finally:
        pbx.stop()
