"""The validation stage as a whole: clean input, every error at once, loader limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import provgit.source
from provgit.load.yaml_events import MAX_ALIAS_EXPANSION, YamlProblem, parse_documents

from .base import summary, validate


def test_base_network_is_valid(tmp_path: Path) -> None:
    result = validate(tmp_path, {})
    assert result.ok, summary(result.diagnostics)
    assert result.diagnostics == []
    assert result.state.counts()["users"] == 1


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    result = validate(
        tmp_path,
        {
            # A syntax error in one file does not hide problems in the others.
            "a.yaml": "departments:\n  - name: [Sales\n",
            "b.yaml": "departments:\n  - name: Café\n",
            "c/d.yaml": "roles:\n  - name: Agent\n    template: Nope\n",
        },
    )
    got = summary(result.diagnostics)
    assert [g.split(": ")[0] for g in got] == ["a.yaml:3:1", "b.yaml:2:5", "c/d.yaml:3:5"], got


def test_alias_bomb_is_refused_at_the_alias_that_passes_the_limit() -> None:
    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    with pytest.raises(YamlProblem, match="alias bomb") as e:
        parse_documents("\n".join(levels).encode())
    # Refused on line 6, where the aliases pass the limit: long before the
    # 9**10 nodes the whole file would expand to.
    assert f"more than {MAX_ALIAS_EXPANSION:,} nodes" in str(e.value)
    assert (e.value.line, e.value.column) == (6, 10)


def test_file_over_the_size_cap_is_refused_with_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provgit.source, "MAX_FILE_BYTES", 2000)
    big = "departments:\n" + "".join(f"  - name: D{i:04}\n" for i in range(200))
    result = validate(tmp_path, {"big.yaml": big})
    assert [d.location.file for d in result.diagnostics] == ["big.yaml"]
    assert "limit per file; split it into several files" in result.diagnostics[0].message
    assert "D0001" not in result.state.of("departments")


def test_yaml_1_2_keeps_no_yes_on_off_as_text(tmp_path: Path) -> None:
    result = validate(
        tmp_path,
        {"case.yaml": "departments:\n  - name: no\n  - name: yes\nlocations:\n  - name: off\n"},
    )
    assert result.ok, summary(result.diagnostics)
    assert {"no", "yes"} <= set(result.state.of("departments"))
    assert "off" in result.state.of("locations")


def test_yaml_file_symlinked_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("departments:\n  - name: Leak\n")
    root = tmp_path / "config"
    root.mkdir()
    os.symlink(outside, root / "leak.yaml")
    result = validate(root, {})
    (only,) = summary(result.diagnostics)
    assert only.startswith("leak.yaml: symlink points outside the config root")
    assert "Leak" not in result.state.of("departments")


def test_settings_document_that_is_not_a_mapping_is_reported(tmp_path: Path) -> None:
    result = validate(tmp_path, {"provgit.yaml": "- version\n"})
    got = summary(result.diagnostics)
    assert len(got) == 1 and got[0].startswith("provgit.yaml:1:1: "), got
    assert "mapping" in got[0]


def test_problems_found_by_rules_carry_kind_key_and_code(tmp_path: Path) -> None:
    result = validate(
        tmp_path,
        {"site/x.yaml": "roles:\n  - name: Agent\n    template: Nope\n"},
    )
    (d,) = result.diagnostics
    assert (d.kind, d.key, d.code) == ("roles", "Agent", "reference")
