"""Line and column of data paths in a YAML file: `locate` re-reads one file's
events and is only called for files that have problems (the parse keeps no
locations on its hot path, see `yaml_events`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from provgit.load.yaml_events import (
    DOC_END,
    DOC_START,
    MAP_END,
    MAP_START,
    PLAIN,
    SCALAR,
    SEQ_END,
    SEQ_START,
    STREAM,
    OutOfRange,
    Path,
    YamlProblem,
    event_reader,
    resolve_plain,
)


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
        with event_reader(data) as get:
            while (ev := get()) is not None:
                code = ev[0]
                if code == DOC_START:
                    doc += 1
                    continue
                if code in (STREAM, DOC_END):
                    continue
                if code in (MAP_END, SEQ_END):
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
                            top[2] = ev[1] if code in (SCALAR, PLAIN) else ""
                            key_path = (*top[0], top[2])
                            if key_path in prefixes and key_path not in found:
                                m = ev[-1]
                                found[key_path] = (m.line + 1, m.column + 1)
                            if code in (MAP_START, SEQ_START):
                                # A collection used as a key (refused by the parse,
                                # but keep the stack balanced for its end event).
                                stack.append([key_path, code == MAP_START, None, 0])
                            continue
                        path = (*top[0], _key(top[2]))
                        top[2] = None
                    else:
                        path = (*top[0], top[3])
                        top[3] += 1
                if path in prefixes:
                    m = ev[-1]
                    if path not in found or isinstance(path[-1], int):
                        found[path] = (m.line + 1, m.column + 1)
                if code == MAP_START:
                    stack.append([path, True, None, 0])
                elif code == SEQ_START:
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
    try:
        v = resolve_plain(raw)
    except OutOfRange:  # refused by the parse; here only a place to point at
        return raw
    return v if isinstance(v, (str, int)) and not isinstance(v, bool) else raw
