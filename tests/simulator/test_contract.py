"""The driver contract, run against both drivers: embedded in-process, and http
against a real simulator process. Same calls, same answers."""

from __future__ import annotations

from typing import Any

import pytest

from provgit.drivers.base import (
    ConflictError,
    Driver,
    FeedTooOldError,
    LockedError,
    NotFoundError,
    OfflineError,
    RefusedError,
    WriteOp,
)

from .conftest import RETENTION, Element

PIN = "4711-very-secret"


def put(collection: str, key: str, fields: dict[str, Any], rev: int | None = None) -> WriteOp:
    return WriteOp("put", collection, key, fields, rev)


def user(dn: str, cos: Any = "1", **extra: Any) -> dict[str, Any]:
    return {"services": [{"dn": dn, "cos_day": cos, "cos_night1": cos}], **extra}


async def refusal(driver: Driver, op: WriteOp) -> RefusedError:
    with pytest.raises(RefusedError) as info:
        await driver.write(op)
    return info.value


def test_info_names_element_type_version_and_revision(element: Element) -> None:
    async def body(d: Driver) -> None:
        info = await d.info()
        assert (info.name, info.type, info.state) == ("cs1", "mivb", "running")
        assert info.version
        await d.write(put("cos", "1", {"comment": "default"}))
        assert (await d.info()).revision == info.revision + 1

    element.run(body)


def test_create_only_if_absent_then_update_only_at_its_revision(element: Element) -> None:
    async def body(d: Driver) -> None:
        created = await d.write(put("departments", "Sales", {"name": "Sales"}))
        assert created.ok and created.revision is not None
        with pytest.raises(ConflictError, match="changed by another user, refresh"):
            await d.write(put("departments", "Sales", {"name": "Sales"}))
        updated = await d.write(put("departments", "Sales", {"name": "S2"}, created.revision))
        assert updated.revision == created.revision + 1
        with pytest.raises(ConflictError, match="changed by another user"):
            await d.write(put("departments", "Sales", {"name": "S3"}, created.revision))
        page = await d.list_records("departments")
        assert page.records[0].fields["name"] == "S2"
        assert page.records[0].revision == updated.revision

    element.run(body)


def test_update_or_delete_of_absent_record_is_not_found(element: Element) -> None:
    async def body(d: Driver) -> None:
        with pytest.raises(NotFoundError):
            await d.write(put("departments", "Nope", {}, 3))
        with pytest.raises(NotFoundError):
            await d.write(WriteOp("delete", "departments", "Nope", None, 3))

    element.run(body)


def test_delete_only_at_its_revision(element: Element) -> None:
    async def body(d: Driver) -> None:
        r = await d.write(put("locations", "Ottawa", {"name": "Ottawa"}))
        assert r.revision is not None
        with pytest.raises(ConflictError):
            await d.write(WriteOp("delete", "locations", "Ottawa", None, r.revision + 5))
        deleted = await d.write(WriteOp("delete", "locations", "Ottawa", None, r.revision))
        assert deleted.ok
        assert (await d.list_records("locations")).records == []

    element.run(body)


def test_out_of_band_edit_makes_provgit_write_stale(element: Element) -> None:
    async def body(d: Driver) -> int:
        r = await d.write(put("departments", "Ops", {"name": "Ops"}))
        assert r.revision is not None
        return r.revision

    rev = element.run(body)
    drift = element.edit("put", "departments", "Ops", {"name": "Ops (edited on element)"})
    assert drift > rev

    async def after(d: Driver) -> None:
        with pytest.raises(ConflictError, match="refresh"):
            await d.write(put("departments", "Ops", {"name": "Ops"}, rev))
        feed = await d.changes(rev)
        assert [(c.key, c.revision) for c in feed.changes] == [("Ops", drift)]

    element.run(after)


def test_refuses_unknown_collection_naming_it(element: Element) -> None:
    async def body(d: Driver) -> None:
        e = await refusal(d, put("workflows", "w1", {}))  # an IVR form, not a call server's
        assert e.refusals[0].form == "workflows"
        assert "workflows" in e.refusals[0].reason

    element.run(body)


def test_refuses_dn_used_by_another_record(element: Element) -> None:
    async def body(d: Driver) -> None:
        await d.write(put("cos", "1", {}))
        await d.write(put("users", "jdoe", user("2001")))
        e = await refusal(d, put("remote_directory", "asmith", {"dn": "2001"}))
        assert e.refusals[0].form == "Remote Directory Number Assignment"
        assert e.refusals[0].field == "dn"
        assert e.refusals[0].reason == "DN 2001 is already used by users/jdoe"
        e = await refusal(d, put("users", "bob", user("2001")))
        assert e.refusals[0].field == "services[0].dn"
        # The record itself may keep its own DN when it is rewritten.
        rec = (await d.list_records("users")).records[0]
        assert (await d.write(put("users", "jdoe", user("2001", x=1), rec.revision))).ok

    element.run(body)


def test_refuses_missing_class_of_service_and_deleting_a_used_one(element: Element) -> None:
    async def body(d: Driver) -> None:
        e = await refusal(d, put("users", "jdoe", user("2001", cos=7)))
        assert e.refusals[0].form == "User and Device Configuration"
        assert e.refusals[0].field == "services[0].cos_day"
        assert e.refusals[0].reason == "Class of Service 7 does not exist on this element"
        cos = await d.write(put("cos", "7", {"comment": "staff"}))
        assert (await d.write(put("users", "jdoe", user("2001", cos=7)))).ok
        assert cos.revision is not None
        e = await refusal(d, WriteOp("delete", "cos", "7", None, cos.revision))
        assert e.refusals[0].form == "Class of Service Options"
        assert "still used by users/jdoe" in e.refusals[0].reason

    element.run(body)


@pytest.mark.parametrize(
    ("collection", "key", "fields", "field", "reason"),
    [
        ("cos", "111", {}, "number", "not 1-110"),
        ("cos", "abc", {}, "number", "not 1-110"),
        ("cos", "5", {"comment": "sixteen chars!!!"}, "comment", "longer than 15"),
        ("cor_groups", "65", {}, "number", "not 1-64"),
        ("remote_directory", "x", {"dn": "9", "directory_name": "x" * 22}, "directory_name", "21"),
        ("departments", "d", {"note": "y" * 256}, "note", "256 characters, at most 255"),
    ],
)
def test_refuses_values_out_of_range_naming_the_field(
    element: Element, collection: str, key: str, fields: dict[str, Any], field: str, reason: str
) -> None:
    async def body(d: Driver) -> None:
        e = await refusal(d, put(collection, key, fields))
        assert e.refusals[0].field == field
        assert reason in e.refusals[0].reason

    element.run(body)


def test_batch_refusal_changes_nothing_and_does_not_stop_the_rest(element: Element) -> None:
    async def body(d: Driver) -> None:
        before = (await d.info()).revision
        results = await d.write_batch(
            [
                put("cos", "3", {}),
                put("users", "a", user("100", cos=3)),  # sees the COS created just before
                put("users", "b", user("100", cos=3)),  # DN taken by a
                put("cos", "3", {}),  # exists already
                WriteOp("delete", "locations", "none", None, 4),
            ]
        )
        assert [r.ok for r in results] == [True, True, False, False, False]
        assert results[0].revision == before + 1 and results[1].revision == before + 2
        assert isinstance(results[2].error, RefusedError)
        assert results[2].error.refusals[0].reason == "DN 100 is already used by users/a"
        assert isinstance(results[3].error, ConflictError)
        assert isinstance(results[4].error, NotFoundError)
        assert (await d.info()).revision == before + 2
        assert await d.write_batch([]) == []

    element.run(body)


def test_secret_values_are_never_returned(element: Element) -> None:
    secret = {"$sensitive": "sha256:abcd", "value": PIN}

    async def body(d: Driver) -> list[Any]:
        start = (await d.info()).revision
        await d.write(put("cos", "1", {}))
        r = await d.write(put("users", "jdoe", user("2001", voicemail_pin=secret)))
        page = await d.list_records("users")
        feed = await d.changes(start)
        batch = await d.write_batch([put("users", "x", user("2002", pin=secret))])
        assert page.records[0].fields["voicemail_pin"] == {"$sensitive": "sha256:abcd"}
        assert r.ok and batch[0].ok
        return [page, feed, batch, r]

    seen = element.run(body)
    assert PIN not in repr(seen)
    if element.kind == "embedded":
        from provgit.simulator.store import ElementStore

        store = ElementStore(element.path)
        assert store.has_secret("users", "jdoe", "voicemail_pin")
        store.close()


def test_managed_by_is_kept_and_element_fills_underscore_fields(element: Element) -> None:
    async def body(d: Driver) -> None:
        await d.write(put("departments", "D", {"name": "D", "_managed_by": "provgit"}))
        fields = (await d.list_records("departments")).records[0].fields
        assert fields["_managed_by"] == "provgit"
        assert "_created" in fields

    element.run(body)


def test_paging_returns_every_record_once_in_key_order(element: Element) -> None:
    async def body(d: Driver) -> None:
        keys = [f"dept{i:03d}" for i in range(25)] + ["a/b c%"]  # odd keys survive the URL
        await d.write_batch([put("departments", k, {"n": i}) for i, k in enumerate(keys)])
        got: list[str] = []
        cursor = None
        for _ in range(20):
            page = await d.list_records("departments", cursor, 7)
            assert len(page.records) <= 7
            got += [r.key for r in page.records]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert got == sorted(keys)
        # An unknown collection is refused, naming it, on reads as on writes (issue 17).
        with pytest.raises(RefusedError, match="no_such_collection"):
            await d.list_records("no_such_collection")

    element.run(body)


def test_change_feed_lists_puts_and_deletes_since_a_revision(element: Element) -> None:
    async def body(d: Driver) -> None:
        start = (await d.info()).revision
        a = await d.write(put("locations", "A", {"x": 1}))
        await d.write(put("locations", "B", {"x": 2}))
        assert a.revision is not None
        await d.write(WriteOp("delete", "locations", "A", None, a.revision))
        feed = await d.changes(start)
        assert [(c.op, c.key) for c in feed.changes] == [
            ("put", "A"),
            ("put", "B"),
            ("delete", "A"),
        ]
        assert feed.changes[2].fields is None
        assert feed.revision == start + 3
        assert (await d.changes(feed.revision)).changes == []
        partial = await d.changes(start, limit=2)
        assert len(partial.changes) == 2 and partial.revision == start + 2

    element.run(body)


def test_change_feed_older_than_retention_says_too_old(element: Element) -> None:
    async def body(d: Driver) -> None:
        start = (await d.info()).revision
        await d.write_batch([put("locations", f"L{i}", {}) for i in range(RETENTION + 5)])
        with pytest.raises(FeedTooOldError, match="too old, resync"):
            await d.changes(start)
        recent = (await d.info()).revision - 3
        assert len((await d.changes(recent)).changes) == 3

    element.run(body)


def test_locked_element_refuses_writes_but_reads(element: Element) -> None:
    element.set_state("locked")

    async def body(d: Driver) -> None:
        assert (await d.info()).state == "locked"
        await d.list_records("cos")
        with pytest.raises(LockedError):
            await d.write(put("cos", "1", {}))
        with pytest.raises(LockedError):
            await d.write_batch([put("cos", "1", {})])

    element.run(body)


def test_offline_element_answers_offline(element: Element) -> None:
    element.set_state("offline")

    async def body(d: Driver) -> None:
        assert (await d.info()).state == "offline"
        with pytest.raises(OfflineError):
            await d.list_records("cos")
        with pytest.raises(OfflineError):
            await d.changes(0)
        with pytest.raises(OfflineError):
            await d.write(put("cos", "1", {}))

    element.run(body)
