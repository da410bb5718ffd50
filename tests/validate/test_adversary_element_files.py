"""An embedded element's file is its own: not provgit's journal or key, not another element's.

`connection.path` is relative to the state directory, where provgit keeps its
journal, its signing key, caches and memos. An element pointed at
`journal.sqlite` wrote its records into the journal; two elements given the
same file (or one given another's default, `elements/NAME.sqlite`) became one
element that reported both as in sync.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .base import NETWORK, summary, validate


def _element(connection: str, name: str = "ivr9", ceid: int = 99) -> str:
    return f"  - name: {name}\n    type: ivr\n    ceid: {ceid}\n    connection: {connection}\n"


def _with(connection: str) -> str:
    return NETWORK + _element(connection)


@pytest.mark.parametrize(
    "path",
    ["journal.sqlite", "secret.key", "memo/target.sqlite", "cache/x", "./observed/ivr9.marshal"],
)
def test_an_element_file_among_provgits_own_files_is_refused(tmp_path: Path, path: str) -> None:
    found = validate(tmp_path, {"network.yaml": _with(f"{{path: '{path}'}}")})
    lines = summary(found.diagnostics)
    assert not found.ok
    assert any(
        line.startswith("network.yaml:28:18: ") and "provgit's own" in line for line in lines
    ), lines


def test_an_element_given_another_elements_default_file_is_refused(tmp_path: Path) -> None:
    found = validate(tmp_path, {"network.yaml": _with("{path: elements/ivr1.sqlite}")})
    lines = summary(found.diagnostics)
    assert any(
        "network.yaml:28:18: " in line and "element ivr1's file" in line for line in lines
    ), lines


def test_two_elements_with_the_same_file_are_refused(tmp_path: Path) -> None:
    network = _with("{path: sims/x.sqlite}") + _element("{path: ./sims//x.sqlite}", "ivr8", 98)
    found = validate(tmp_path, {"network.yaml": network})
    assert any("element ivr9's file" in line for line in summary(found.diagnostics))


def test_an_element_file_of_its_own_in_a_subfolder_is_fine(tmp_path: Path) -> None:
    found = validate(tmp_path, {"network.yaml": _with("{path: sims/ivr9.sqlite}")})
    assert found.ok, summary(found.diagnostics)
