"""Adversary 9: a retry time past any calendar. `apply.retry_max_seconds:
.inf` (or 1e300) in provgit.yaml validated; a pending update's next retry is
now plus it, shown as a time: the run that queued one for a down element
sent its writes, then failed on its report (a traceback), and so did every
status after it. Now it is a located problem of the config: nothing is
written, the status stays readable. Real simulator processes on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Sim, cli, write_config
from .test_number_swaps import _held, _set_users, _status

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("value", [".inf", "1e300", "86401"])
def test_a_retry_time_past_any_calendar_is_refused_before_anything_is_written(
    sims: list[Sim], tmp_path: Path, value: str
) -> None:
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    settings = config / "provgit.yaml"
    text = settings.read_text()
    assert "  retry_max_seconds: 0.1\n" in text
    settings.write_text(text.replace("retry_max_seconds: 0.1", f"retry_max_seconds: {value}"))
    cs2 = next(s for s in sims if s.name == "cs2")
    cs2.faults(offline=True)  # user1's change waits for it as a pending update
    _set_users(config, {"user1": ("cs2", "3009"), "user0": ("cs1", "3008")})
    before = {s.name: _held(s) for s in sims if s.name != "cs2"}
    r = cli("reconcile", str(config))
    assert r.code != 0
    said = r.out + r.err
    assert "retry_max_seconds" in said and "Traceback" not in said, said
    assert {s.name: _held(s) for s in sims if s.name != "cs2"} == before
    assert _status(config)["pending_updates"] == []
