"""A journal connection's page cache has a bound far below SQLite's default:
a watcher holds its connections for weeks while the file grows."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from pathlib import Path

import pytest

from provgit.journal.store import PAGE_CACHE_KIB, Store, open_file_read_only, open_writable


def _sqlite_heap() -> Callable[[], int]:
    name = ctypes.util.find_library("sqlite3") or "libsqlite3.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        pytest.skip("the SQLite library the sqlite3 module uses cannot be loaded by name")
    used: Callable[[], int] = lib.sqlite3_memory_used
    used.restype = ctypes.c_int64  # type: ignore[attr-defined]
    return used


def _grow(store: Store, mb: int) -> None:
    store.db.execute("CREATE TABLE ballast (n INTEGER PRIMARY KEY, pad BLOB)")
    with store.transaction():
        for n in range(mb * 256):
            store.db.execute("INSERT INTO ballast VALUES (?, randomblob(4000))", (n,))


def _cache_grown_by_reading(store: Store, heap: Callable[[], int]) -> int:
    before = heap()
    total = 0
    for _ in range(2):  # twice: a cache keeps what the first pass read
        for (n,) in store.db.execute("SELECT length(pad) FROM ballast").fetchall():
            total += n
    assert total > 0
    return heap() - before


def test_a_journal_connection_caches_at_most_its_bound_of_a_large_file(tmp_path: Path) -> None:
    heap = _sqlite_heap()
    path = tmp_path / "journal.sqlite"
    writer = open_writable(path)
    try:
        _grow(writer, 8)
    finally:
        writer.close()
    bound = PAGE_CACHE_KIB * 1024 * 1.25  # page headers ride on each cached page
    assert PAGE_CACHE_KIB * 1024 < 2_000 * 1024  # under SQLite's default, or it proves nothing
    for store in (open_writable(path), open_file_read_only(path)):
        try:
            grown = _cache_grown_by_reading(store, heap)
        finally:
            store.close()
        assert grown < bound, f"{grown:,} bytes cached reading an 8 MB journal"
        assert grown > PAGE_CACHE_KIB * 1024 * 0.5, "the reads went through no cache at all"
