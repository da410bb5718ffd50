"""The element store's bulk write path: a batch reads what its ops touch once
and writes in bulk, yet every op sees the ones before it, a refused op changes
nothing, every write has exactly one feed entry and a stale fence refuses the
whole batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provgit.simulator.store import ElementStore
from provgit.wire.protocol import (
    ConflictError,
    FencedError,
    NotFoundError,
    RefusedError,
    WriteOp,
)

PIN = {"$sensitive": "sha256:feed", "value": "4711"}


def put(collection: str, key: str, fields: dict[str, Any], rev: int | None = None) -> WriteOp:
    return WriteOp("put", collection, key, fields, rev)


def user(dn: str, cos: str = "1", **extra: Any) -> dict[str, Any]:
    return {"services": [{"dn": dn, "cos_day": cos}], **extra}


@pytest.fixture
def store(tmp_path: Path) -> ElementStore:
    s = ElementStore(tmp_path / "e.sqlite", element_type="mivb", retention=1000)
    assert all(r.ok for r in s.write_batch([put("cos", "1", {}), put("users", "b", user("200"))]))
    return s


def feed_keys(store: ElementStore, since: int) -> list[tuple[str, str, str]]:
    return [(c.op, c.collection, c.key) for c in store.changes(since).changes]


def test_a_conflict_in_the_middle_of_a_batch_changes_only_that_write(
    store: ElementStore,
) -> None:
    start = store.revision
    b = store.get_record("users", "b")
    results = store.write_batch(
        [
            put("users", "a", user("100")),
            put("users", "b", user("201"), rev=b.revision + 7),  # stale
            put("users", "c", user("300")),
            put("users", "a", user("101")),  # create-only: exists since op 1
        ]
    )
    assert [r.ok for r in results] == [True, False, True, False]
    assert [r.revision for r in results if r.ok] == [start + 1, start + 2]
    assert isinstance(results[1].error, ConflictError)
    assert isinstance(results[3].error, ConflictError)
    assert store.get_record("users", "b") == b
    assert store.get_record("users", "a").fields["services"][0]["dn"] == "100"
    assert feed_keys(store, start) == [("put", "users", "a"), ("put", "users", "c")]
    assert store.revision == start + 2


def test_later_ops_of_a_batch_see_the_dns_and_cos_of_earlier_ones(store: ElementStore) -> None:
    start = store.revision
    results = store.write_batch(
        [
            put("users", "a", user("100")),
            put("users", "a", user("101"), rev=start + 1),  # frees DN 100
            put("users", "d", user("100")),  # takes it, same batch
            put("users", "e", user("101")),  # a holds it now
            put("cos", "7", {}),
            put("users", "f", user("700", cos="7")),  # the COS made two ops ago
            WriteOp("delete", "cos", "7", None, start + 4),  # still used by f
            WriteOp("delete", "users", "b", None, 2),
            put("users", "g", user("200")),  # b's DN, freed by its delete
        ]
    )
    assert [r.ok for r in results] == [True, True, True, False, True, True, False, True, True]
    assert isinstance(results[3].error, RefusedError)
    assert results[3].error.refusals[0].reason == "DN 101 is already used by users/a"
    assert isinstance(results[6].error, RefusedError)
    assert "still used by users/f" in results[6].error.refusals[0].reason
    with pytest.raises(NotFoundError):
        store.get_record("users", "b")
    # The index rows written in bulk are the ones the next batch is checked against.
    later = store.write_batch(
        [put("users", x, user(dn)) for x, dn in (("h", "100"), ("i", "101"), ("j", "200"))]
        + [put("users", "k", user("201"))]
    )
    owners = [r.error.refusals[0].reason for r in later if isinstance(r.error, RefusedError)]
    taken = (("100", "d"), ("101", "a"), ("200", "g"))
    assert owners == [f"DN {dn} is already used by users/{u}" for dn, u in taken]
    assert later[3].ok
    assert len(feed_keys(store, start)) == 7 + 1


def test_a_pin_kept_when_the_same_batch_rewrites_its_record_without_the_value(
    store: ElementStore,
) -> None:
    start = store.revision
    fingerprint = {"$sensitive": "sha256:feed"}
    results = store.write_batch(
        [
            put("users", "p", user("400", voicemail_pin=PIN)),
            put("users", "p", user("401", voicemail_pin=fingerprint), rev=start + 1),
            put("users", "q", user("500", voicemail_pin=PIN)),
            put("users", "q", user("501"), rev=start + 3),  # the PIN field is gone
        ]
    )
    assert all(r.ok for r in results)
    assert store.has_secret("users", "p", "voicemail_pin")
    assert not store.has_secret("users", "q", "voicemail_pin")
    assert "4711" not in repr(store.changes(start))


def test_a_stale_fence_refuses_the_whole_batch_and_writes_nothing(store: ElementStore) -> None:
    assert store.write_batch([put("users", "a", user("100"))], fence=("e", 5))[0].ok
    assert store.write_batch([put("users", "n", user("110"))], fence=("e", 6))[0].ok
    start = store.revision
    results = store.write_batch(
        [
            put("users", "x", user("120")),
            put("users", "a", user("130"), rev=1),  # would conflict anyway
            WriteOp("delete", "users", "n", None, start),
        ],
        fence=("e", 5),
    )
    assert [type(r.error) for r in results] == [FencedError] * 3
    assert store.revision == start
    assert feed_keys(store, start) == []
    with pytest.raises(NotFoundError):
        store.get_record("users", "x")
    report = store.fences.report()
    assert report["refused"] == [{"name": "e", "token": 5, "highest": 6, "ops": 3}]
    assert [c["token"] for c in report["changes"]] == [5, 6]


def test_a_batch_that_fails_half_way_leaves_nothing_of_it(store: ElementStore) -> None:
    start = store.revision
    ops = [put("users", f"u{i}", user(str(600 + i))) for i in range(40)]
    # A value the element cannot encode: the write raises (not an element
    # refusal), after 20 ops are held in memory and a COS delete flushed them.
    ops[10:10] = [put("cos", "9", {}), WriteOp("delete", "cos", "9", None, start + 11)]
    ops.insert(30, put("users", "bad", {"services": [], "tags": {1, 2}}))
    with pytest.raises(TypeError):
        store.write_batch(ops)
    assert store.revision == start
    assert feed_keys(store, start) == []
    with pytest.raises(NotFoundError):
        store.get_record("users", "u0")
    assert store.write_batch([put("users", "u0", user("600"))])[0].ok


def test_a_create_is_stored_as_sent_with_created_and_moves_the_digest_as_a_full_encode(
    tmp_path: Path,
) -> None:
    """The bulk path splices `_created` into the create's own encoding and
    hashes what was sent; the bytes and the digest are those the general path
    (encode the stored dict, hash it read back) gives."""
    from provgit.wire import codec
    from provgit.wire import digest as content

    s = ElementStore(tmp_path / "d.sqlite", element_type="mivb", retention=1000)
    sent = {"name": "Zoë", "n": 2, "services": [{"dn": "300"}, "x"], "_managed_by": "provgit"}
    assert all(r.ok for r in s.write_batch([put("users", "u", sent)]))
    text = s._db.execute("SELECT fields FROM records WHERE key = 'u'").fetchone()[0]
    created = codec.loads(text)["_created"]
    assert text == codec.dumps({**sent, "_created": created}).decode()
    assert s._meta()["digest"] == content.to_text(content.record_hash("users", "u", sent))
    # The general path (an update) keeps `_created` and moves the digest alike.
    changed = {**sent, "name": "Zoe"}
    assert all(r.ok for r in s.write_batch([put("users", "u", changed, 1)]))
    assert codec.loads(s._db.execute("SELECT fields FROM records").fetchone()[0]) == {
        **changed,
        "_created": created,
    }
    assert s._meta()["digest"] == content.to_text(content.record_hash("users", "u", changed))


@pytest.mark.parametrize(
    "sent",
    [
        {"name": "a"},
        {"name": "a", "_managed_by": "provgit"},
        {"name": "a", "_managed_by": "provgit", "_seen": 1},
        {"name": "a", "_seen": 1},
        {"_seen": "_managed_by", "name": "a"},
        {"name": "_x", "_managed_by": "provgit"},
        {"name": "a", "_managed_by": "provgit", "nested": {"_inner": 1}},
        {"_managed_by": "provgit", "services": [{"dn": "301", "_by": "x"}]},
    ],
)
def test_a_creates_digest_leaves_out_exactly_the_bookkeeping_the_general_path_does(
    tmp_path: Path, sent: dict[str, Any]
) -> None:
    """A create is hashed without copying its fields when its JSON shows no
    top-level `_` field but the ownership mark; whatever the `_` keys and
    values, the digest is the one of the fields as provgit compares them."""
    from provgit.wire import digest as content

    s = ElementStore(tmp_path / "d.sqlite", element_type="mivb", retention=1000)
    assert all(r.ok for r in s.write_batch([put("users", "u", sent)]))
    assert s._meta()["digest"] == content.to_text(content.record_hash("users", "u", sent))


@pytest.mark.parametrize(
    "fields",
    [
        {"note": "y" * 255},
        {"note": "y" * 256},
        {"y" * 300: "short"},
        {"a": "é" * 200, "b": 1},
        {"a": "é" * 256},
        {"a": 'q"' * 100 + "y" * 256},
        {"a": ["x", {"deep": "z" * 300}]},
        {"a": "x", "b": "\\" + "w" * 300},
        {"t": "t" * 254 + "é"},
    ],
)
def test_the_long_string_scan_finds_what_the_walk_finds(fields: dict[str, Any]) -> None:
    """The bulk path rules long strings out from the fields' JSON (one C scan
    from each quote); whenever a value is over 255 characters it must say
    "maybe", so the refusals are those of the walk of the fields."""
    from provgit.simulator import rules
    from provgit.wire import codec

    encoded = codec.dumps(fields)
    by_scan = rules.check_record("ivr", "prompts", "k", fields, encoded=encoded)
    by_walk = rules.check_record("ivr", "prompts", "k", fields)
    assert by_scan == by_walk


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"dn": "100", "directory_name": "x" * 22},
        {"services": [{"dn": "1", "cos_day": "12", "cos_night1": 60, "cos_night2": False}]},
        {"services": "none"},
        {"services": ["skip", {"dn": "1", "cos_day": 7, "cos_night1": True}, {"dn": 5}]},
        {"services": [{"directory_name": "y" * 30, "cos_night2": "3", "cos_day": None}]},
    ],
)
def test_one_walk_finds_what_the_three_rules_find(fields: dict[str, Any]) -> None:
    from provgit.simulator import rules

    for etype in ("mivb", "micollab"):
        dns, cos, long_names = rules.walk(etype, fields)
        assert dns == rules.directory_numbers(fields)
        assert cos == rules.cos_references(etype, fields)
        assert long_names == list(rules._directory_name_fields(fields))
