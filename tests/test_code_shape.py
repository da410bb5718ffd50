"""No source file over 500 lines, no function over 80 without a reason beside it (#14).

A function may be longer when the line above its `def` (or above its first
decorator) says why, as `# long: <reason>` (a hot loop kept in one piece, for
instance); nothing else is exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "provgit"
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
LONG_MARK = "# long:"

# (file, function): CLI commands whose pipeline wiring moves to the library API in #14.


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if ".egg-info" not in p.parts)


def _name(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


def _has_reason(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """`# long: <reason>` right above the def, or above its first decorator."""
    starts = {node.lineno, *(d.lineno for d in node.decorator_list)}
    for start in starts:
        above = lines[start - 2].strip() if start >= 2 else ""
        if above.startswith(LONG_MARK) and above[len(LONG_MARK) :].strip():
            return True
    return False


def _long_functions(path: Path) -> list[tuple[str, int, int]]:
    """(name, line, length) of each function over the limit without a reason."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    out = []
    for node in ast.walk(ast.parse(text, str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        assert node.end_lineno is not None
        length = node.end_lineno - node.lineno
        if length > MAX_FUNCTION_LINES and not _has_reason(lines, node):
            out.append((node.name, node.lineno, length))
    return out


def _file_lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_source_file_is_over_500_lines() -> None:
    over = [
        f"src/provgit/{_name(p)}: {n} lines (at most {MAX_FILE_LINES}); split it by responsibility"
        for p in _sources()
        if (n := _file_lines(p)) > MAX_FILE_LINES
    ]
    assert not over, "\n".join(over)


def test_no_function_is_over_80_lines_without_a_reason() -> None:
    over = [
        f"src/provgit/{_name(p)}:{line}: {name} is {length} lines (at most "
        f"{MAX_FUNCTION_LINES}); split it, or write `{LONG_MARK} <why>` above the def"
        for p in _sources()
        for name, line, length in _long_functions(p)
    ]
    assert not over, "\n".join(over)


def test_a_long_function_without_a_reason_is_found(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    plain = tmp_path / "plain.py"
    plain.write_text(f"def f() -> None:\n{body}\n", encoding="utf-8")
    marked = tmp_path / "marked.py"
    marked.write_text(
        f"import functools\n\n\n# long: one hot loop\n@functools.cache\ndef f() -> None:\n{body}\n",
        encoding="utf-8",
    )
    empty_reason = tmp_path / "empty.py"
    empty_reason.write_text(f"# long:\ndef f() -> None:\n{body}\n", encoding="utf-8")
    assert [(n, line) for n, line, _ in _long_functions(plain)] == [("f", 1)]
    assert _long_functions(marked) == []
    assert [n for n, _, _ in _long_functions(empty_reason)] == ["f"]
