"""The shipped sample network loads with the expected records and validates cleanly."""

from __future__ import annotations

import wave
from pathlib import Path

from provgit.source import read_directory
from provgit.validate import validate_source

SAMPLE = Path(__file__).resolve().parent.parent / "sample-config"

EXPECTED = {
    "elements": 6,
    "classes_of_service": 8,
    "cor_groups": 4,
    "departments": 5,
    "locations": 4,
    "templates": 6,
    "roles": 8,
    "users": 64,
    "ivr_media_servers": 2,
    "prompts": 10,
    "subroutines": 2,
    "workflows": 3,
}


def test_sample_config_counts_and_no_diagnostics(tmp_path: Path) -> None:
    result = validate_source(read_directory(SAMPLE), tmp_path / "cache")
    assert [str(d.location) + " " + d.message for d in result.diagnostics] == []
    assert result.ok
    assert result.state.counts() == EXPECTED


def test_sample_network_shape() -> None:
    state = validate_source(read_directory(SAMPLE), None).state
    elements = state.elements
    assert [e.name for e in elements.values() if e.type == "micollab"] == ["micollab1"]
    mivb = {n: e for n, e in elements.items() if e.type == "mivb"}
    assert len(mivb) == 3 and len({e.cluster for e in mivb.values()}) == 2
    pairs = {(n, e.partner) for n, e in mivb.items() if e.partner}
    assert pairs == {("mivb1", "mivb2"), ("mivb2", "mivb1")}
    assert elements["mivb1"].cluster == elements["mivb2"].cluster
    assert all(e.driver == "embedded" and e.reach_through for e in elements.values())
    assert len({e.ceid for e in elements.values()}) == len(elements)
    users = state.of("users").values()
    assert {u.host for u in users} == set(mivb)
    assert any(len(u.services) == 3 for u in users)
    assert any(u.voicemail_pin is not None for u in users)
    dns = [s.dn for u in users for s in u.services]
    assert len(dns) == len(set(dns))


def test_prompt_audio_is_real_small_wav() -> None:
    state = validate_source(read_directory(SAMPLE), None).state
    prompts = state.of("prompts").values()
    assert len({p.name for p in prompts}) >= 6
    assert any(p.language != "en-US" for p in prompts)
    for p in prompts:
        path = SAMPLE / p.file
        assert path.stat().st_size < 16_000
        with wave.open(str(path)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
            assert w.getnframes() > 0
