"""The load stage: C parser, YAML 1.2 scalars, parse cache, locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from provgit.load import yaml_events
from provgit.load.yaml_events import YamlProblem, c_parser_in_use, parse_documents
from provgit.load.yaml_locate import locate
from provgit.source import read_directory
from provgit.validate import validate_source

CONFIG = {
    "provgit.yaml": "version: 1\nnetwork: n\n",
    "a.yaml": "departments:\n  - name: Sales\n  - name: Support\n",
    "b/c.yaml": "locations:\n  - name: Ottawa\n",
}


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_c_parser_is_in_use() -> None:
    # Without ruamel.yaml.clib the pure-Python parser is silently ~8x slower.
    assert c_parser_in_use()
    assert yaml_events.CParser.__module__.startswith("ruamel.yaml.clib")
    assert yaml_events.CParser.__name__ == "CParser"


def test_yaml_1_2_scalars() -> None:
    text = b"a: no\nb: yes\nc: on\nd: 012\ne: 0o17\nf: 0x1F\ng: ~\nh: 1.5\ni: true\nj: '7'\n"
    (doc,) = parse_documents(text)
    assert doc == {
        "a": "no",
        "b": "yes",
        "c": "on",
        "d": 12,
        "e": 15,
        "f": 31,
        "g": None,
        "h": 1.5,
        "i": True,
        "j": "7",
    }


def test_several_documents_in_one_file() -> None:
    assert parse_documents(b"a: 1\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]


def test_duplicate_key_is_refused_with_its_position() -> None:
    with pytest.raises(YamlProblem, match="duplicate key 'x'") as e:
        parse_documents(b"top:\n  x: 1\n  y: 2\n  x: 3\n")
    assert (e.value.line, e.value.column) == (4, 3)


def test_aliases_within_limits_are_expanded() -> None:
    (doc,) = parse_documents(b"a: &p {k: 1}\nb: *p\n")
    assert doc == {"a": {"k": 1}, "b": {"k": 1}}


def test_locate_finds_keys_list_items_and_later_documents() -> None:
    data = (
        b"users:\n"
        b"  - login_id: a\n"
        b"    services:\n"
        b'      - dn: "1"\n'
        b'      - {dn: "2", cos: {day: 7}}\n'
        b"---\n"
        b"roles:\n"
        b"  - name: R\n"
    )
    found = locate(
        data,
        [
            (0, "users", 0),
            (0, "users", 0, "services", 1, "dn"),
            (0, "users", 0, "services", 1, "cos", "day"),
            (0, "users", 0, "host"),  # missing: the record that lacks it
            (1, "roles", 0, "name"),
        ],
    )
    assert found == {
        (0, "users", 0): (2, 5),
        (0, "users", 0, "services", 1, "dn"): (5, 10),
        (0, "users", 0, "services", 1, "cos", "day"): (5, 25),
        (0, "users", 0, "host"): (2, 5),
        (1, "roles", 0, "name"): (8, 5),
    }


def test_cache_serves_unchanged_files_on_the_second_run(tmp_path: Path) -> None:
    root, cache = tmp_path / "config", tmp_path / "cache"
    _write(root, CONFIG)
    first = validate_source(read_directory(root), cache)
    assert (first.parsed, first.cached) == (3, 0)
    second = validate_source(read_directory(root), cache)
    assert (second.parsed, second.cached) == (0, 3)
    assert second.state.resources == first.state.resources
    # A changed file is parsed again; the other still comes from the cache.
    _write(root, {"a.yaml": "departments:\n  - name: Sales\n"})
    third = validate_source(read_directory(root), cache)
    assert (third.parsed, third.cached) == (1, 2)
    assert list(third.state.of("departments")) == ["Sales"]


@pytest.mark.parametrize("garbage", [b"", b"\x00\x01garbage", b"\xe9" * 100])
def test_corrupt_cache_entry_is_just_a_miss(tmp_path: Path, garbage: bytes) -> None:
    root, cache = tmp_path / "config", tmp_path / "cache"
    _write(root, CONFIG)
    first = validate_source(read_directory(root), cache)
    entries = [p for p in cache.rglob("*.marshal")]
    assert len(entries) == 3
    for p in entries:
        p.write_bytes(garbage)
    again = validate_source(read_directory(root), cache)
    assert again.ok and again.diagnostics == []
    assert (again.parsed, again.cached) == (3, 0)
    assert again.state.resources == first.state.resources
    # The miss rewrote the entries.
    assert validate_source(read_directory(root), cache).cached == 3


def test_cache_is_not_used_when_disabled(tmp_path: Path) -> None:
    _write(tmp_path, CONFIG)
    for _ in range(2):
        result = validate_source(read_directory(tmp_path), None)
        assert (result.parsed, result.cached) == (3, 0)
