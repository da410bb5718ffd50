"""The content digest: an element's and provgit's copy agree record by record,
whatever the order of writes, and a silent edit moves the element's digest
though its feed and revision say nothing."""

from __future__ import annotations

from pathlib import Path

from provgit.observe import own_fields
from provgit.simulator.store import ElementStore
from provgit.wire.digest import digest_of, from_text, moved, record_hash, to_text
from provgit.wire.protocol import WriteOp


def _listed(store: ElementStore) -> int:
    records = [
        (c, r.key, own_fields(r.fields))
        for c in ("cos", "users")
        for r in store.list_records(c, None, 5000).records
    ]
    return digest_of(records, own=True)


def _cos(n: int, comment: str) -> WriteOp:
    return WriteOp("put", "cos", str(n), {"number": n, "comment": comment})


def test_the_elements_digest_is_that_of_what_it_holds(tmp_path: Path) -> None:
    store = ElementStore(tmp_path / "e.sqlite", element_type="mivb")
    try:
        assert store.info().digest == to_text(0)
        store.write_batch([_cos(n, f"c{n}") for n in range(1, 6)])
        store.write(WriteOp("put", "cos", "3", {"number": 3, "comment": "x"}, if_revision=3))
        store.write(WriteOp("delete", "cos", "4", if_revision=4))
        assert from_text(store.info().digest) == _listed(store)
    finally:
        store.close()


def test_a_silent_edit_moves_the_digest_not_the_feed(tmp_path: Path) -> None:
    store = ElementStore(tmp_path / "e.sqlite", element_type="mivb")
    try:
        store.write(_cos(7, "Sales"))
        before = store.info()
        store.write_silently(_cos(7, "Restored"))
        after = store.info()
        assert after.revision == before.revision
        assert store.changes(before.revision).changes == []
        assert after.digest != before.digest
        assert from_text(after.digest) == _listed(store)
    finally:
        store.close()


def test_a_file_from_before_the_digest_gets_one_from_its_records(tmp_path: Path) -> None:
    store = ElementStore(tmp_path / "e.sqlite", element_type="mivb")
    try:
        store.write_batch([_cos(n, "c") for n in range(1, 4)])
        store._db.execute("DELETE FROM meta WHERE k = 'digest'")
        assert from_text(store.info().digest) == _listed(store)
        store.write(_cos(9, "new"))
        assert from_text(store.info().digest) == _listed(store)
    finally:
        store.close()


def test_bookkeeping_fields_do_not_count_but_the_ownership_mark_does() -> None:
    fields = {"number": 1, "comment": "a"}
    assert record_hash("cos", "1", {**fields, "_created": "2026"}) == record_hash(
        "cos", "1", fields
    )
    assert record_hash("cos", "1", {**fields, "_managed_by": "provgit"}) != record_hash(
        "cos", "1", fields
    )
    # Moving a record there and back leaves the digest where it was.
    d = moved(5, "cos", "1", None, fields)
    assert moved(d, "cos", "1", fields, None) == 5


def test_a_digest_that_cannot_be_read_is_none() -> None:
    for text in (None, 7, "", "xyz", "0123456789abcdeg", "0" * 17):
        assert from_text(text) is None
    assert from_text(to_text(2**64 - 1)) == 2**64 - 1
