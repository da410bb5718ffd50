"""A lean YAML 1.2 constructor over ruamel.yaml's C parser events.

ruamel.yaml's own safe loader composes a node tree and resolves every scalar
with Python regexes; building plain data straight from the C parser's events
is about five times faster, and that parse is the whole cost of loading a large
network. Output is plain dict/list/str/int/float/bool/None, so it can be cached
with `marshal`.

Locations are not kept on this hot path: `yaml_locate.locate()` re-reads one file and maps
data paths to line/column, and is only called for files that have problems.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

# Aliases may re-use a block; past this many nodes added through aliases the
# file is refused (a "billion laughs" file expands exponentially).
MAX_ALIAS_EXPANSION = 100_000
# Config data is a few levels deep (a workflow step's choices are the deepest,
# at 6). Far deeper nesting is hostile or broken, and past ~2,000 levels the
# parse cache's marshal refuses it: stop it here, where the position is known.
MAX_NESTING = 64

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


class OutOfRange(ValueError):
    """An integer past 64 bits: no field of provgit's takes one, the journal
    and the JSON documents (orjson) cannot hold one, and past 4,300 digits
    Python will not even read it (a traceback, not a located problem)."""


# An integer's digits past this many are out of range whatever they are (2**63 has 19).
_INT_DIGITS = 20


def _int(v: str, base: int = 10) -> int:
    if len(v) > _INT_DIGITS * (1 if base == 10 else 4):
        raise OutOfRange(v)
    n = int(v, base)
    if not -(2**63) <= n < 2**63:
        raise OutOfRange(v)
    return n


def resolve_plain(v: str) -> Any:
    """YAML 1.2 core schema resolution of a plain scalar (so `no` stays a
    string). OutOfRange for an integer past 64 bits."""
    if not v or v in _NULLS:
        return None
    c = v[0]
    if c in _NUMERIC_START:
        if _INT.fullmatch(v):
            return _int(v)
        if _FLOAT.fullmatch(v):
            return float(v)
        if _INF.fullmatch(v):
            return float("-inf") if c == "-" else float("inf")
        if _NAN.fullmatch(v):
            return float("nan")
        if _INT_OCT.fullmatch(v):
            return _int(v[2:], 8)
        if _INT_HEX.fullmatch(v):
            return _int(v[2:], 16)
        return v
    b = _BOOLS.get(v)
    return v if b is None else b


def _tagged(tag: str, v: str, line: int, col: int) -> Any:
    if tag in _STR_TAGS:
        return v
    try:
        resolved = resolve_plain(v)
    except OutOfRange:
        raise YamlProblem(_OUT_OF_RANGE, line, col, _OUT_OF_RANGE_HINT) from None
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


# -- Events as tuples ---------------------------------------------------------
#
# Measured on 20,000 users: libyaml itself scans and parses the bytes in 0.09 s,
# but ruamel's Cython layer then builds every event by calling the pure-Python
# event classes of `ruamel.yaml.events` (three nested `__init__` frames per
# event), which takes 0.5 s: most of the parse. The Cython module looks those
# classes up as its own module globals at call time, so while we parse we put
# small factories there that build plain tuples instead (0.27 s), and put the
# classes back afterwards. A lock makes the swap exclusive within the process;
# nothing else in provgit drives the C parser (round-trip mode is pure Python).
# If a future ruamel.yaml.clib calls the classes differently, the probe below
# fails at import and we fall back to converting real event objects, which is
# slower but gives exactly the same tuples.
#
# Tuple layout, first item the event code:
#   plain scalar  (PLAIN, value, start_mark): no tag, no anchor, plain style; most
#                 scalars, so the hot loop handles them first and in full
#   other scalar  (SCALAR, value, anchor, tag, implicit, style, start_mark)
#   mapping start (MAP_START, anchor, tag, start_mark)
#   seq start     (SEQ_START, anchor, tag, start_mark)
#   alias         (ALIAS, anchor, start_mark)
#   anything else (code, start_mark)
SCALAR, MAP_START, SEQ_START, MAP_END, SEQ_END, ALIAS, DOC_START, DOC_END, STREAM, PLAIN = range(10)

_FACTORIES: dict[str, Callable[..., tuple[Any, ...]]] = {
    "ScalarEvent": lambda a, t, i, v, s, e, st: (
        (PLAIN, v, s)
        if t is None and a is None and not st and i[0]
        else (SCALAR, v, a, t, i, st, s)
    ),
    "MappingStartEvent": lambda a, t, i, s, e, f: (MAP_START, a, t, s),
    "SequenceStartEvent": lambda a, t, i, s, e, f: (SEQ_START, a, t, s),
    "MappingEndEvent": lambda s, e: (MAP_END, s),
    "SequenceEndEvent": lambda s, e: (SEQ_END, s),
    "AliasEvent": lambda a, s, e: (ALIAS, a, s),
    "DocumentStartEvent": lambda s, e, x, v, t: (DOC_START, s),
    "DocumentEndEvent": lambda s, e, x: (DOC_END, s),
    "StreamStartEvent": lambda s, e, enc: (STREAM, s),
    "StreamEndEvent": lambda s, e: (STREAM, s),
}
_CLIB: Any = sys.modules.get(CParser.__module__)
if _CLIB is None or getattr(_CLIB, "CParser", None) is not CParser:
    _CLIB = sys.modules.get("_ruamel_yaml")
_SWAP_LOCK = threading.Lock()
_ORIGINAL_CLASSES: dict[str, Any] = {n: getattr(_CLIB, n, None) for n in _FACTORIES}


def _after_fork_in_child() -> None:
    # A fork while another thread was parsing would leave the child with the
    # lock held forever and the tuple factories installed: start it clean.
    global _SWAP_LOCK
    _SWAP_LOCK = threading.Lock()
    for name, original in _ORIGINAL_CLASSES.items():
        if original is not None:
            setattr(_CLIB, name, original)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _as_tuple(ev: Any) -> tuple[Any, ...] | None:
    """The slow, version-proof path: a real ruamel event object as our tuple."""
    if ev is None:
        return None
    et = type(ev).__name__
    if et == "ScalarEvent":
        if ev.tag is None and ev.anchor is None and not ev.style and ev.implicit[0]:
            return (PLAIN, ev.value, ev.start_mark)
        return (SCALAR, ev.value, ev.anchor, ev.tag, ev.implicit, ev.style, ev.start_mark)
    if et == "MappingStartEvent":
        return (MAP_START, ev.anchor, ev.tag, ev.start_mark)
    if et == "SequenceStartEvent":
        return (SEQ_START, ev.anchor, ev.tag, ev.start_mark)
    if et == "AliasEvent":
        return (ALIAS, ev.anchor, ev.start_mark)
    code = {
        "MappingEndEvent": MAP_END,
        "SequenceEndEvent": SEQ_END,
        "DocumentStartEvent": DOC_START,
        "DocumentEndEvent": DOC_END,
    }.get(et, STREAM)
    return (code, ev.start_mark)


@contextmanager
def event_reader(data: bytes, fast: bool | None = None) -> Iterator[Callable[[], Any]]:
    """A function returning the next event tuple (None at the end) while in scope.

    Parser errors become YamlProblem with the parser's position.
    """
    use_fast = _FAST_EVENTS if fast is None else fast
    with _SWAP_LOCK:
        saved: dict[str, Any] = {}
        if use_fast:
            for name, factory in _FACTORIES.items():
                saved[name] = getattr(_CLIB, name)
                setattr(_CLIB, name, factory)
        parser = None
        try:
            parser = CParser(data)
            get = parser.get_event if use_fast else lambda: _as_tuple(parser.get_event())
            yield get
        except MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
            problem = e.problem or e.context or "YAML syntax error"
            raise YamlProblem(
                f"YAML syntax error: {problem}", line, col, _tab_hint(data, line, col)
            ) from None
        except ReaderError as e:
            # The reader reports a byte offset; people need a line and column.
            line, col = _line_col(data, e.position)
            what = f"character #x{e.character:04x}" if isinstance(e.character, int) else "byte"
            raise YamlProblem(
                f"YAML error: unacceptable {what}: {e.reason}",
                line,
                col,
                "remove it; a NUL or other control byte usually means a binary or "
                "UTF-16 file, and YAML text must be UTF-8",
            ) from None
        except YAMLError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise YamlProblem(f"YAML error: {first}", 1, 1) from None
        finally:
            if parser is not None:
                parser.dispose()
            for name, original in saved.items():
                setattr(_CLIB, name, original)


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset."""
    offset = max(0, min(offset, len(data)))
    start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def _tab_hint(data: bytes, line: int, col: int) -> str | None:
    """A hint when the error is at a tab in a line's indentation."""
    lines = data.split(b"\n")
    if not 1 <= line <= len(lines):
        return None
    text = lines[line - 1]
    indent = text[: len(text) - len(text.lstrip(b" \t"))]
    if b"\t" in indent and col <= len(indent) + 1:
        return "YAML forbids tabs for indentation; use spaces"
    return None


def _all_events(data: bytes, fast: bool) -> list[tuple[Any, ...]]:
    out = []
    with event_reader(data, fast) as get:
        while (ev := get()) is not None:
            out.append(ev)
    return out


def _probe_fast_events() -> bool:
    """True if the tuple factories give the same events as the real classes."""
    if _CLIB is None or not all(hasattr(_CLIB, n) for n in _FACTORIES):
        return False
    sample = b"%YAML 1.2\n---\na: &x [1, {b: 'c'}]\n? d\n: *x\ne: !!str 2\n...\n---\n- x\n"

    def plain(evs: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [tuple((m.line, m.column) if hasattr(m, "line") else m for m in e) for e in evs]

    try:
        return plain(_all_events(sample, True)) == plain(_all_events(sample, False))
    except Exception:
        return False


_FAST_EVENTS = False
_FAST_EVENTS = _probe_fast_events()


# long: the hot loop of loading (module docstring): one pass over the parser events, locals only.
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
    # Plain scalars repeat a lot (every key, departments, labels): resolve each
    # distinct one once. Sharing the string objects also makes the marshal
    # cache entries smaller (marshal writes a repeated object as a reference).
    memo: dict[str, Any] = {}
    plain = resolve_plain
    # The open collection: its container, whether it is a mapping, the key
    # waiting for its value (no_key: the next node is a key), its anchor and
    # the node count at its start. Outer collections wait on `stack`.
    stack: list[tuple[Any, bool, Any, Any, int]] = []
    cur: Any = None
    cur_map = False
    no_key = _NO_KEY
    key: Any = no_key
    cur_anchor: Any = None
    cur_start = 0
    value: Any
    with event_reader(data) as get:
        while (ev := get()) is not None:
            code = ev[0]
            if code == PLAIN:
                # The hot path, complete in itself: resolve, then place the value.
                nodes += 1
                raw = ev[1]
                value = memo.get(raw, no_key)
                if value is no_key:
                    try:
                        value = memo[raw] = plain(raw)
                    except OutOfRange:
                        _out_of_range(ev[2])
                if cur_map:
                    if key is no_key:
                        if value in cur or value == "<<":
                            _bad_key(value, ev[2], "" if value in cur else None)
                        key = value
                    else:
                        cur[key] = value
                        key = no_key
                elif cur is not None:
                    cur.append(value)
                else:
                    docs.append(value)
                continue
            style: Any = None
            if code == SCALAR:
                nodes += 1
                raw = ev[1]
                tag = ev[3]
                style = ev[5]
                if tag is not None and tag != "!":
                    m = ev[6]
                    value = _tagged(tag, raw, m.line + 1, m.column + 1)
                elif not style and ev[4][0]:
                    value = memo.get(raw, no_key)
                    if value is no_key:
                        try:
                            value = memo[raw] = plain(raw)
                        except OutOfRange:
                            _out_of_range(ev[6])
                else:
                    value = raw
                if ev[2] is not None:
                    anchors[ev[2]] = value
                    anchor_sizes[ev[2]] = 1
            elif code in (MAP_START, SEQ_START):
                nodes += 1
                tag = ev[2]
                if tag is not None and tag not in (
                    "tag:yaml.org,2002:map",
                    "tag:yaml.org,2002:seq",
                    "!",
                ):
                    m = ev[3]
                    raise YamlProblem(f"unsupported tag {tag!r}", m.line + 1, m.column + 1)
                if cur is not None:
                    stack.append((cur, cur_map, key, cur_anchor, cur_start))
                    if len(stack) >= MAX_NESTING:
                        m = ev[3]
                        raise YamlProblem(
                            f"data nested more than {MAX_NESTING} levels deep; refused",
                            m.line + 1,
                            m.column + 1,
                            "provgit records are a few levels deep: "
                            "check the brackets or indentation here",
                        )
                cur_map = code == MAP_START
                cur = {} if cur_map else []
                key = no_key
                cur_anchor = ev[1]
                cur_start = nodes + expansion
                continue
            elif code in (MAP_END, SEQ_END):
                value = cur
                if cur_anchor is not None:
                    anchors[cur_anchor] = value
                    anchor_sizes[cur_anchor] = nodes + expansion - cur_start + 1
                if stack:
                    cur, cur_map, key, cur_anchor, cur_start = stack.pop()
                else:
                    cur = None
                    cur_map = False
            elif code == ALIAS:
                m = ev[2]
                if ev[1] not in anchors:
                    raise YamlProblem(
                        f"alias *{ev[1]} refers to an unknown anchor", m.line + 1, m.column + 1
                    )
                value = anchors[ev[1]]
                expansion += anchor_sizes[ev[1]]
                if expansion > MAX_ALIAS_EXPANSION:
                    raise YamlProblem(
                        f"aliases expand to more than {MAX_ALIAS_EXPANSION:,} nodes "
                        "(an alias bomb?); refused",
                        m.line + 1,
                        m.column + 1,
                        "write the data out instead of nesting aliases",
                    )
            elif code == DOC_END:
                anchors.clear()
                continue
            else:
                continue

            if cur is None:
                docs.append(value)
            elif not cur_map:
                cur.append(value)
            elif key is no_key:
                if isinstance(value, (dict, list)):
                    m = ev[-1]
                    raise YamlProblem(
                        "a mapping key must be a plain value, not a mapping or list",
                        m.line + 1,
                        m.column + 1,
                    )
                if value in cur or (value == "<<" and not style):
                    _bad_key(value, ev[-1], "" if value in cur else style)
                key = value
            else:
                cur[key] = value
                key = no_key
    return docs


_OUT_OF_RANGE = "an integer past 64 bits; refused"
_OUT_OF_RANGE_HINT = "no provgit field takes a number this large: check the digits"


def _out_of_range(mark: Any) -> NoReturn:
    raise YamlProblem(_OUT_OF_RANGE, mark.line + 1, mark.column + 1, _OUT_OF_RANGE_HINT)


def _bad_key(value: Any, mark: Any, style: Any) -> NoReturn:
    """A repeated key ("" as style) or a plain merge key (<<)."""
    if style == "":
        raise YamlProblem(
            f"duplicate key {value!r} in this mapping",
            mark.line + 1,
            mark.column + 1,
            "each key may appear once per mapping; remove or merge the repeated one",
        )
    raise YamlProblem(
        "merge keys (<<) are not supported",
        mark.line + 1,
        mark.column + 1,
        "write the fields out (roles and templates carry shared settings)",
    )


class _NoKey:
    __slots__ = ()


_NO_KEY = _NoKey()
