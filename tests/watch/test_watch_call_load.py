"""A real watcher (in this process, fake clock injected) against a real IVR
simulator whose call load peaks: the IVR content waits, the status and the
metrics say so, and it lands whole once the load falls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from apply.helpers import Sim, journal, start_sims
from apply.test_call_load_holds import ALL, NONE, T0, write_ivr_config
from provgit.watch.loop import Watcher

from .test_watch_windows import FakeClock, _request, _run_watcher, _until

pytestmark = pytest.mark.slow


@pytest.fixture
def ivr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    (sim,) = start_sims(tmp_path, [("ivr1", "ivr")], "--call-load", "0:85")
    try:
        yield sim
    finally:
        sim.stop()


def test_the_watcher_defers_ivr_content_while_the_load_peaks_and_sends_it_whole_after(
    ivr: Sim, tmp_path: Path
) -> None:
    config = write_ivr_config(tmp_path / "config", ivr)

    def content() -> dict[str, list[str]]:
        records = ivr.records()
        return {c: sorted(records.get(c, {})) for c in NONE}

    async def body(watcher: Watcher, url: str) -> None:
        def deferred() -> bool:
            _, doc = _request(url + "/status.json")
            e = json.loads(doc) if isinstance(doc, str) else doc
            ivr1 = e["elements"].get("ivr1", {})
            return bool(
                ivr1.get("status") == "Deferred: call load 85 % (limit 20 %)"
                and ivr1.get("class") == "held"
            )

        def metric(value: str) -> bool:
            _, text = _request(url + "/metrics")
            return f'provgit_held_elements{{by="call_load",element="ivr1"}} {value}' in text

        await _until(deferred)
        # The metric moves when the run has ended.
        await _until(lambda: metric("1.0"))
        assert content() == NONE
        await asyncio.to_thread(ivr.faults, call_load="0:10")
        code, _ = await asyncio.to_thread(_request, url + "/reconcile", {})
        assert code == 202
        await _until(lambda: content() == ALL)

        def nothing_pending() -> bool:
            with journal(config / ".provgit") as j:
                return j.pending("ivr1") == []

        await _until(nothing_pending)
        await _until(lambda: metric("0.0"))

    _run_watcher(config, FakeClock(T0), body)
