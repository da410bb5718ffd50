"""User errors: exit 1, a clear message, no traceback, nothing written."""

from __future__ import annotations

from pathlib import Path

from .conftest import SETTINGS, cli, elements_yaml


def _root(tmp: Path, elements: bool = True) -> Path:
    root = tmp / "config"
    root.mkdir()
    (root / "provgit.yaml").write_text(SETTINGS)
    if elements:
        (root / "elements.yaml").write_text(elements_yaml())
    return root


def _yaml_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*.yaml") if ".provgit" not in p.parts}


def test_a_config_without_elements_is_refused(tmp_path: Path) -> None:
    result = cli("import", "--into", str(_root(tmp_path, elements=False)))
    assert result.exit_code == 1
    assert "defines no elements" in result.output and "Traceback" not in result.output


def test_unknown_element(tmp_path: Path) -> None:
    result = cli("import", "--into", str(_root(tmp_path)), "--element", "mivb9")
    assert result.exit_code == 1 and "unknown element(s): mivb9" in result.output


def test_branch_needs_drift(tmp_path: Path) -> None:
    result = cli("import", "--into", str(_root(tmp_path)), "--branch", "x")
    assert result.exit_code == 1 and "--branch only goes with --drift" in result.output


def test_drift_needs_git(tmp_path: Path) -> None:
    result = cli("import", "--into", str(_root(tmp_path)), "--drift")
    assert result.exit_code == 1 and "not inside a git repository" in result.output


def test_unreadable_element_writes_nothing(tmp_path: Path) -> None:
    root = _root(tmp_path)
    # An http element nobody serves: a closed loopback port.
    (root / "elements.yaml").write_text(
        elements_yaml().replace(
            "  - name: ivr1\n",
            "  - name: ivr1\n    driver: http\n"
            "    connection: {url: 'http://127.0.0.1:9', timeout: 2}\n",
        )
    )
    before = _yaml_files(root)
    result = cli("import", "--into", str(root))
    assert result.exit_code == 1, result.output
    assert "cannot read ivr1" in result.output and "nothing was written" in result.output
    assert _yaml_files(root) == before


def test_an_invalid_config_is_reported_not_imported(tmp_path: Path) -> None:
    root = _root(tmp_path)
    (root / "bad.yaml").write_text("users:\n  - login_id: x\n")
    result = cli("import", "--into", str(root))
    assert result.exit_code == 1 and "bad.yaml:2" in result.output
