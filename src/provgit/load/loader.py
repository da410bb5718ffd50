"""Bytes of many files -> parsed documents, using the cache and every core."""

from __future__ import annotations

import gc
import marshal
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from provgit.diagnostics import Diagnostic, Location
from provgit.load.cache import ParseCache
from provgit.load.yaml_events import YamlProblem, parse_documents
from provgit.source import ConfigSource, SourceFile

# Below this many bytes to parse, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 2_000_000


@dataclass(frozen=True)
class LoadedFile:
    path: str
    blob_id: str
    data: bytes
    docs: list[Any]


@dataclass(frozen=True)
class Loaded:
    files: list[LoadedFile]
    diagnostics: list[Diagnostic]
    parsed: int  # files parsed this run (cache misses)
    cached: int  # files served from the cache


@contextmanager
def gc_frozen() -> Iterator[None]:
    """No collections while building millions of small objects that all survive."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()  # what we built is long-lived: keep it out of future collections
        if was:
            gc.enable()


def _parse(data: bytes) -> tuple[str, bytes | tuple[str, int, int, str | None]]:
    try:
        return "ok", marshal.dumps(parse_documents(data))
    except YamlProblem as p:
        return "err", (p.message, p.line, p.column, p.hint)


def _parse_here(data: bytes) -> tuple[str, Any]:
    """In this process: keep the parsed data as is (no marshal round trip)."""
    try:
        docs = parse_documents(data)
    except YamlProblem as p:
        return "err", (p.message, p.line, p.column, p.hint)
    return "docs", (docs, marshal.dumps(docs))


def _parse_in_worker(data: bytes) -> tuple[str, Any]:
    gc.disable()
    return _parse(data)


def _decode_problem(f: SourceFile) -> Diagnostic | None:
    try:
        f.data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = f.data.count(b"\n", 0, e.start) + 1
        col = e.start - (f.data.rfind(b"\n", 0, e.start) + 1) + 1
        return Diagnostic(
            Location(f.path, line, col),
            f"file is not valid UTF-8 (byte 0x{f.data[e.start]:02x})",
            hint="save the file as UTF-8",
            code="encoding",
        )
    return None


def load_files(
    source: ConfigSource, cache_dir: str | os.PathLike[str] | None, workers: int | None = None
) -> Loaded:
    cache = ParseCache(cache_dir)
    diags: list[Diagnostic] = [
        Diagnostic(Location(e.path), e.message, code="unreadable") for e in source.errors
    ]
    results: dict[str, list[Any]] = {}
    todo: list[SourceFile] = []
    with gc_frozen():
        for f in source.files:
            docs = cache.get(f.blob_id)
            if docs is not None:
                results[f.path] = docs
                continue
            problem = _decode_problem(f)
            if problem is not None:
                diags.append(problem)
                continue
            todo.append(f)
        total = sum(len(f.data) for f in todo)
        n = workers if workers is not None else _usable_cpus()
        parsed: Iterable[tuple[SourceFile, tuple[str, Any]]]
        pool = None
        if n > 1 and len(todo) > 1 and total >= PARALLEL_MIN_BYTES:
            # Largest first, so one big file does not start last. Results are
            # consumed as they arrive, so unmarshalling and writing the cache
            # overlap with the parsing still going on.
            order = sorted(todo, key=lambda f: -len(f.data))
            # Imported here: a warm validate parses nothing, and the pool
            # loads multiprocessing (~20 modules).
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(max_workers=min(n, len(todo)))
            parsed = zip(order, pool.map(_parse_in_worker, [f.data for f in order]), strict=True)
        else:
            parsed = ((f, _parse_here(f.data)) for f in todo)
        try:
            _collect(parsed, results, cache, diags)
        finally:
            if pool is not None:
                pool.shutdown()
    files = [
        LoadedFile(f.path, f.blob_id, f.data, results[f.path])
        for f in source.files
        if f.path in results
    ]
    return Loaded(files, diags, parsed=len(todo), cached=len(source.files) - len(todo))


def _usable_cpus() -> int:
    """CPUs this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _collect(
    parsed: Iterable[tuple[SourceFile, tuple[str, Any]]],
    results: dict[str, list[Any]],
    cache: ParseCache,
    diags: list[Diagnostic],
) -> None:
    for f, (status, payload) in parsed:
        if status == "ok":
            assert isinstance(payload, bytes)
            results[f.path] = marshal.loads(payload)
            cache.put(f.blob_id, payload)
        elif status == "docs":
            docs, raw = payload
            results[f.path] = docs
            cache.put(f.blob_id, raw)
        else:
            msg, line, col, hint = payload
            diags.append(Diagnostic(Location(f.path, line, col), msg, hint=hint, code="yaml"))
