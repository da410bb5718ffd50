"""The status model, its renderers and the writing of report files, one way only (#14).

`report` (the status model) imports neither `render` nor `publish`; `render`
may read `report` but writes nothing, so it does not import `publish`.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "provgit"


def _imports(package: str) -> dict[str, set[str]]:
    """Module file -> every provgit module it imports (at any depth, lazily too)."""
    out: dict[str, set[str]] = {}
    for path in sorted((SRC / package).rglob("*.py")):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        out[path.relative_to(SRC).as_posix()] = {m for m in found if m.startswith("provgit.")}
    return out


def _reaching(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{name} imports {module}"
        for name, modules in _imports(package).items()
        for module in sorted(modules)
        if module.startswith(forbidden)
    ]


def test_the_status_model_imports_no_renderer_and_writes_no_file() -> None:
    assert _reaching("report", ("provgit.render", "provgit.publish")) == []


def test_renderers_do_not_write_report_files() -> None:
    assert _reaching("render", ("provgit.publish",)) == []
