"""The tuple-event fast path gives exactly what the real ruamel event objects give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provgit.load import yaml_events
from provgit.load.yaml_events import YamlProblem, parse_documents
from provgit.load.yaml_locate import locate

SAMPLE = Path(__file__).resolve().parents[2] / "sample-config"

TEXTS = [
    b"a: 1\nb: [1, 2, {c: d}]\n",
    b"a: &x {b: 1}\nc: *x\n",
    b"a: !!int '12'\nb: !!str 12\nc: !!float 1\nd: !!bool true\n",
    b"---\na: 1\n...\n---\n- 2\n--- 3\n",
    b"a: no\nb: ~\nc: 0o17\nd: 0x1F\ne: .inf\nf: '1'\ng: |\n  lit\n",
    b"a: 1\na: 2\n",
    b"a: [1, 2\n",
    b"<<: {a: 1}\n",
    b"a: !foo x\n",
    b"a: *nope\n",
    b"? [1]\n: x\n",
    b"a: 1\n---\n",
    b"- &a x\n- *a\n- ! y\n",
]


def _outcome(data: bytes) -> Any:
    try:
        return ("ok", parse_documents(data))
    except YamlProblem as p:
        return ("problem", p.message, p.line, p.column, p.hint)


def test_documents_after_a_mapping_document() -> None:
    assert parse_documents(b"a: 1\n---\n") == [{"a": 1}, None]
    assert parse_documents(b"a: 1\n--- x\n--- [y]\n") == [{"a": 1}, "x", ["y"]]


def test_fast_events_are_in_use() -> None:
    # If a ruamel.yaml.clib upgrade breaks the swap, parsing still works but
    # is about 1.7x slower: make that visible.
    assert yaml_events._FAST_EVENTS


@pytest.mark.parametrize("data", TEXTS)
def test_fast_and_fallback_paths_agree(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _outcome(data)
    monkeypatch.setattr(yaml_events, "_FAST_EVENTS", False)
    assert _outcome(data) == fast


def test_sample_config_same_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted(SAMPLE.rglob("*.yaml"))
    fast = [parse_documents(f.read_bytes()) for f in files]
    paths = [(0, "users", 1, "services", 0, "dn"), (0, "users", 3), (0, "missing")]
    fast_loc = [locate(f.read_bytes(), paths) for f in files]
    monkeypatch.setattr(yaml_events, "_FAST_EVENTS", False)
    assert [parse_documents(f.read_bytes()) for f in files] == fast
    assert [locate(f.read_bytes(), paths) for f in files] == fast_loc


def test_event_classes_are_restored_after_parsing_and_after_errors() -> None:
    clib = yaml_events._CLIB
    before = {n: getattr(clib, n) for n in yaml_events._FACTORIES}
    parse_documents(b"a: 1\n")
    with pytest.raises(YamlProblem):
        parse_documents(b"a: [1\n")
    assert {n: getattr(clib, n) for n in yaml_events._FACTORIES} == before
    assert all(isinstance(v, type) for v in before.values())


def test_locate_survives_a_collection_used_as_key() -> None:
    found = locate(b"[a, b]: 1\nc: 2\n", [(0, "c")])
    assert found[(0, "c")] == (2, 1)
