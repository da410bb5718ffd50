"""Plan cases as data: desired + observed -> expected operations.

Each file in `cases/` describes one behaviour; see `base.yaml` for the network
every case starts from and the keys a case may use (documented in
`cases/README.md`).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from provgit.drivers.base import StoredRecord
from provgit.observe import Observation
from provgit.plan import Plan, PlanOptions, compute_plan
from provgit.projection import Target, project
from provgit.secrets import Fingerprinter
from provgit.source import read_directory
from provgit.validate import validate_source

HERE = Path(__file__).parent
CASES = sorted((HERE / "cases").glob("*.yaml"))
_yaml = YAML(typ="safe", pure=True)


def _wav(tone: int) -> bytes:
    frames = struct.pack("<8h", *([tone] * 8))
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
    body += struct.pack("<I", len(frames)) + frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _write_config(
    root: Path, docs: dict[str, Any], settings: dict[str, Any], audio: dict[str, int]
) -> None:
    root.mkdir(parents=True)
    (root / "provgit.yaml").write_text(json.dumps({"network": "cases", **settings}))
    (root / "network.yaml").write_text(json.dumps(docs))
    for rel, tone in audio.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(_wav(tone))


def _target(
    root: Path, monkeypatch: pytest.MonkeyPatch, secrets: dict[str, str]
) -> tuple[Any, Target]:
    for k, v in secrets.items():
        monkeypatch.setenv(k, v)
    source = read_directory(root)
    result = validate_source(source, None)
    assert result.ok, [str(d.location) + " " + d.message for d in result.diagnostics]
    return result.state, project(result.state, Fingerprinter(b"case-key"), source.read_other)


def _observed(target: Target, elements: list[str], revision: int = 10) -> dict[str, Observation]:
    return {
        name: Observation(
            name,
            "running",
            revision,
            {
                coll: {k: StoredRecord(coll, k, dict(f), 3) for k, f in recs.items()}
                for coll, recs in target.records.get(name, {}).items()
            },
        )
        for name in elements
    }


def _apply_patch(obs: dict[str, Observation], patch: dict[str, Any]) -> None:
    for element, collections in (patch or {}).items():
        for coll, records in collections.items():
            have = obs[element].records.setdefault(coll, {})
            for key, fields in records.items():
                key = str(key)
                if fields is None:
                    have.pop(key, None)
                elif key in have:
                    merged = {**have[key].fields, **fields}
                    have[key] = StoredRecord(
                        coll, key, {k: v for k, v in merged.items() if v != "<absent>"}, 3
                    )
                else:
                    have[key] = StoredRecord(coll, key, fields, 3)


def run_case(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plan:
    base = _yaml.load((HERE / "base.yaml").read_text())
    base_audio = {"audio/welcome.wav": 100}
    audio = {**base_audio, **case.get("audio", {})}
    secrets = case.get("secrets", {})
    _write_config(
        tmp_path / "before",
        {**base, **case.get("desired_before", {})},
        case.get("settings_before", {}),
        base_audio,
    )
    _, before = _target(tmp_path / "before", monkeypatch, case.get("secrets_before", secrets))
    docs = {**base, **case.get("desired", {})}
    _write_config(tmp_path / "after", docs, case.get("settings", {}), audio)
    state, after = _target(tmp_path / "after", monkeypatch, secrets)
    for k in case.get("unset_secrets", []):
        monkeypatch.delenv(k, raising=False)
    if case.get("unset_secrets"):
        state, after = _target(tmp_path / "after", monkeypatch, {})
    elements = list(state.elements)
    mode = case.get("observed", "base")
    observed = _observed({"base": before, "desired": after}.get(mode, Target({}, {}, {})), elements)
    _apply_patch(observed, case.get("patch", {}))
    for name in case.get("offline", []):
        observed[name] = Observation(name, "offline", None, error="element is offline")
    options = PlanOptions(**case.get("options", {}))
    types = {n: e.type for n, e in state.elements.items()}
    return compute_plan(after, observed, state.settings, types, options)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_plan_case(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = _yaml.load(path.read_text())
    plan = run_case(case, tmp_path, monkeypatch)
    got = {
        e.element: [f"{op.action} {op.collection}/{op.key}" for op in e.operations]
        for e in plan.elements
        if e.operations
    }
    assert got == case.get("expect", {}), f"{path.name}: {case['description']}"
    for where, changes in case.get("expect_changes", {}).items():
        element, ref = where.split(" ")
        coll, key = ref.split("/", 1)
        ep = plan.element(element)
        assert ep is not None
        op = next(o for o in ep.operations if (o.collection, o.key) == (coll, key))
        assert op.to_json()["changes"] == changes
    for element, text in case.get("expect_refused", {}).items():
        ep = plan.element(element)
        assert ep is not None and ep.refusal is not None and text in ep.refusal, ep
    refused = {e.element for e in plan.elements if e.refusal}
    assert refused == set(case.get("expect_refused", {}))
    warnings = list(plan.warnings) + [w for e in plan.elements for w in e.warnings]
    for text in case.get("expect_warnings", []):
        assert any(text in w for w in warnings), warnings
    for name in case.get("offline", []):
        ep = plan.element(name)
        assert ep is not None and not ep.observed and ep.state == "offline"
    for where, deps in case.get("expect_depends", {}).items():
        element, ref = where.split(" ")
        coll, key = ref.split("/", 1)
        ep = plan.element(element)
        assert ep is not None
        op = next(o for o in ep.operations if (o.collection, o.key) == (coll, key))
        assert sorted(list(d) for d in op.depends_on) == sorted(deps)
    # Deletes that wait for the record's create on another element (plan/moves.py).
    moves = {
        e.element: [
            f"{m.collection}/{m.key} -> {', '.join(m.to)}"
            + ("" if m.as_key is None else f" as {m.as_key}")
            for m in e.moves
        ]
        for e in plan.elements
        if e.moves
    }
    assert moves == case.get("expect_moves", {}), f"{path.name}: {case['description']}"
    # A number swap's temporary spare-number steps (plan/swaps.py).
    swaps = {
        e.element: [
            f"{s.collection}/{s.key} "
            + ", ".join(f"{dn} as {spare}" for dn, spare in s.spares)
            + ("" if s.home is None else f" leaving for {s.home}")
            for s in e.swaps
        ]
        for e in plan.elements
        if e.swaps
    }
    assert swaps == case.get("expect_swaps", {}), f"{path.name}: {case['description']}"
    # Every case's plan survives its JSON form and never holds a secret value.
    text = plan.dumps()
    assert Plan.loads(text).checksum() == plan.checksum()
    for value in case.get("secrets", {}).values():
        assert value not in text
    assert len(CASES) >= 25
