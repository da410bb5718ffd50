"""A lean YAML 1.2 constructor over ruamel.yaml's C parser events.

ruamel.yaml's own safe loader composes a node tree and resolves every scalar
with Python regexes; building plain data straight from the C parser's events
is about five times faster, and that parse is the whole cost of loading a large
network. Output is plain dict/list/str/int/float/bool/None, so it can be cached
with `marshal`.

Locations are not kept on this hot path: `locate()` re-reads one file and maps
data paths to line/column, and is only called for files that have problems.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

# Aliases may re-use a block; past this many nodes added through aliases the
# file is refused (a "billion laughs" file expands exponentially).
MAX_ALIAS_EXPANSION = 100_000

Path = tuple[str | int, ...]

_YAML = YAML(typ="safe", pure=False)
CParser: Any = _YAML.Parser


def c_parser_in_use() -> bool:
    return type(CParser).__module__ != "ruamel.yaml.parser" and "clib" in CParser.__module__


class YamlProblem(Exception):
    """A file that is not usable YAML, with the 1-based position of the problem."""

    def __init__(self, message: str, line: int = 0, column: int = 0, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.hint = hint


_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+")
_INT_OCT = re.compile(r"0o[0-7]+")
_INT_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")
_NUMERIC_START = frozenset("0123456789+-.")
_STR_TAGS = frozenset(("tag:yaml.org,2002:str", "!"))


def _plain(v: str) -> Any:
    """YAML 1.2 core schema resolution of a plain scalar (so `no` stays a string)."""
    if not v or v in _NULLS:
        return None
    c = v[0]
    if c in _NUMERIC_START:
        if _INT.fullmatch(v):
            return int(v)
        if _FLOAT.fullmatch(v):
            return float(v)
        if _INF.fullmatch(v):
            return float("-inf") if c == "-" else float("inf")
        if _NAN.fullmatch(v):
            return float("nan")
        if _INT_OCT.fullmatch(v):
            return int(v[2:], 8)
        if _INT_HEX.fullmatch(v):
            return int(v[2:], 16)
        return v
    b = _BOOLS.get(v)
    return v if b is None else b


def _tagged(tag: str, v: str, line: int, col: int) -> Any:
    if tag in _STR_TAGS:
        return v
    resolved = _plain(v)
    wanted = {
        "tag:yaml.org,2002:int": int,
        "tag:yaml.org,2002:float": float,
        "tag:yaml.org,2002:bool": bool,
        "tag:yaml.org,2002:null": type(None),
    }.get(tag)
    if wanted is None:
        raise YamlProblem(
            f"unsupported tag {tag!r}", line, col, "remove the tag; provgit reads plain YAML data"
        )
    if wanted is float and isinstance(resolved, int):
        return float(resolved)
    if not isinstance(resolved, wanted) or (wanted is int and isinstance(resolved, bool)):
        raise YamlProblem(f"value {v!r} does not match its tag {tag!r}", line, col)
    return resolved


def _events(data: bytes) -> Iterator[Any]:
    parser = CParser(data)
    try:
        while parser.check_event():
            yield parser.get_event()
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        problem = e.problem or e.context or "YAML syntax error"
        raise YamlProblem(f"YAML syntax error: {problem}", line, col) from None
    except YAMLError as e:
        raise YamlProblem(f"YAML error: {e}") from None
    finally:
        parser.dispose()


def parse_documents(data: bytes) -> list[Any]:
    """Parse every document of a YAML stream into plain data.

    Raises YamlProblem for syntax errors, duplicate keys, non-scalar keys,
    unsupported tags and alias bombs.
    """
    docs: list[Any] = []
    anchors: dict[str, Any] = {}
    anchor_sizes: dict[str, int] = {}
    expansion = 0
    nodes = 0
    # Stack of [container, pending_key | _NO_KEY, anchor, node count at start]
    stack: list[list[Any]] = []
    no_key = _NO_KEY
    for ev in _events(data):
        et = type(ev).__name__
        if et == "ScalarEvent":
            nodes += 1
            style = ev.style
            if ev.tag is not None and ev.tag != "!":
                m = ev.start_mark
                value: Any = _tagged(ev.tag, ev.value, m.line + 1, m.column + 1)
            elif not style and ev.implicit[0]:
                value = _plain(ev.value)
            else:
                value = ev.value
            if ev.anchor is not None:
                anchors[ev.anchor] = value
                anchor_sizes[ev.anchor] = 1
        elif et == "MappingStartEvent" or et == "SequenceStartEvent":
            nodes += 1
            if ev.tag is not None and ev.tag not in (
                "tag:yaml.org,2002:map",
                "tag:yaml.org,2002:seq",
                "!",
            ):
                m = ev.start_mark
                raise YamlProblem(f"unsupported tag {ev.tag!r}", m.line + 1, m.column + 1)
            stack.append(
                [{} if et == "MappingStartEvent" else [], no_key, ev.anchor, nodes + expansion, ev]
            )
            continue
        elif et == "MappingEndEvent" or et == "SequenceEndEvent":
            container, _, anchor, start, _start_ev = stack.pop()
            value = container
            if anchor is not None:
                anchors[anchor] = value
                anchor_sizes[anchor] = nodes + expansion - start + 1
        elif et == "AliasEvent":
            m = ev.start_mark
            if ev.anchor not in anchors:
                raise YamlProblem(
                    f"alias *{ev.anchor} refers to an unknown anchor", m.line + 1, m.column + 1
                )
            value = anchors[ev.anchor]
            expansion += anchor_sizes[ev.anchor]
            if expansion > MAX_ALIAS_EXPANSION:
                raise YamlProblem(
                    f"aliases expand to more than {MAX_ALIAS_EXPANSION:,} nodes "
                    "(an alias bomb?); refused",
                    m.line + 1,
                    m.column + 1,
                    "write the data out instead of nesting aliases",
                )
        elif et == "DocumentEndEvent":
            anchors.clear()
            continue
        else:
            continue

        if not stack:
            docs.append(value)
            continue
        top = stack[-1]
        container = top[0]
        if type(container) is list:
            container.append(value)
        elif top[1] is no_key:
            if isinstance(value, (dict, list)):
                m = ev.start_mark
                raise YamlProblem(
                    "a mapping key must be a plain value, not a mapping or list",
                    m.line + 1,
                    m.column + 1,
                )
            if value in container:
                m = ev.start_mark
                raise YamlProblem(
                    f"duplicate key {value!r} in this mapping",
                    m.line + 1,
                    m.column + 1,
                    "each key may appear once per mapping; remove or merge the repeated one",
                )
            if value == "<<" and not ev.style:
                m = ev.start_mark
                raise YamlProblem(
                    "merge keys (<<) are not supported",
                    m.line + 1,
                    m.column + 1,
                    "write the fields out (roles and templates carry shared settings)",
                )
            top[1] = value
        else:
            container[top[1]] = value
            top[1] = no_key
    return docs


class _NoKey:
    __slots__ = ()


_NO_KEY = _NoKey()


def locate(data: bytes, paths: Iterable[Path]) -> dict[Path, tuple[int, int]]:
    """1-based (line, column) for each data path of the first document.

    A path that does not exist resolves to the deepest part of it that does
    (a missing field points at the mapping that lacks it). Paths start with the
    document index.
    """
    wanted = {tuple(p) for p in paths}
    prefixes: set[Path] = set()
    for p in wanted:
        for i in range(len(p) + 1):
            prefixes.add(p[:i])
    found: dict[Path, tuple[int, int]] = {}
    stack: list[list[Any]] = []  # [path, is_map, pending_key|None, next_index]
    doc = -1
    try:
        for ev in _events(data):
            et = type(ev).__name__
            if et == "DocumentStartEvent":
                doc += 1
                continue
            if et in ("StreamStartEvent", "StreamEndEvent", "DocumentEndEvent"):
                continue
            if et in ("MappingEndEvent", "SequenceEndEvent"):
                stack.pop()
                continue
            # Path of the node this event starts.
            if not stack:
                path: Path = (doc,)
            else:
                top = stack[-1]
                if top[1]:
                    if top[2] is None:
                        # This event is a key.
                        top[2] = ev.value if et == "ScalarEvent" else ""
                        key_path = (*top[0], top[2])
                        if key_path in prefixes and key_path not in found:
                            m = ev.start_mark
                            found[key_path] = (m.line + 1, m.column + 1)
                        continue
                    path = (*top[0], _key(top[2]))
                    top[2] = None
                else:
                    path = (*top[0], top[3])
                    top[3] += 1
            if path in prefixes:
                m = ev.start_mark
                if path not in found or isinstance(path[-1], int):
                    found[path] = (m.line + 1, m.column + 1)
            if et == "MappingStartEvent":
                stack.append([path, True, None, 0])
            elif et == "SequenceStartEvent":
                stack.append([path, False, None, 0])
    except YamlProblem:
        pass
    out: dict[Path, tuple[int, int]] = {}
    for p in wanted:
        for i in range(len(p), -1, -1):
            if p[:i] in found:
                out[p] = found[p[:i]]
                break
        else:
            out[p] = (1, 1)
    return out


def _key(raw: str) -> str | int:
    v = _plain(raw)
    return v if isinstance(v, (str, int)) and not isinstance(v, bool) else raw
