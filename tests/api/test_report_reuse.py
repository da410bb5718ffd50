"""The report's derived part (`report.derived_part`) is reused when what it
was derived from is the same: a reconcile with nothing to do writes the
reports without deriving again, and says what a derivation says. Anything
that feeds the derivation (an element's reading with operations planned, a
pending update, an element down, a broken seal) derives it again."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from provgit.api import Config
from provgit.render import status_html
from provgit.report import derive
from provgit.report import derived_part as reuse
from provgit.simulator.store import ElementStore

from .conftest import edit_element, element_record


def _comparable(doc: Any) -> Any:
    """A document without what differs from one report to the next of the same state."""
    doc = dict(doc)
    doc.pop("generated")
    doc["resources"] = [{**r, "time": "t"} for r in doc["resources"]]
    doc["elements"] = {n: {**e, "time": "t"} for n, e in doc["elements"].items()}
    return doc


def _in_sync(sample: Path) -> Config:
    """The sample reconciled, then reconciled with nothing to do (the first
    run wrote every record: its report derives them); the part is kept."""
    config = Config.open(sample, sample.parent / "state")
    assert asyncio.run(config.reconcile()).exit_code == 0
    assert asyncio.run(config.reconcile()).exit_code == 0
    assert (config.state_dir / "memo" / reuse.FILE_NAME).is_file()
    return config


def _no_derivation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("derived again")

    monkeypatch.setattr(derive, "derive_fast", refused)
    monkeypatch.setattr(derive, "derive", refused)


def _derived_status(config: Config, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The status document derived afresh (no part reused)."""
    with monkeypatch.context() as m:
        m.setattr(reuse, "load_part", lambda state_dir, key: None)
        return _comparable(config.status().document)


def test_a_reconcile_with_nothing_to_do_reuses_the_derived_part_and_says_the_same(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _in_sync(sample)
    derived = _derived_status(config, monkeypatch)
    assert derived["in_sync"] and derived["resources"]

    with monkeypatch.context() as m:
        _no_derivation(m)
        applied = asyncio.run(config.reconcile())
        assert applied.exit_code == 0 and applied.status_file is not None
        written = json.loads(applied.status_file.read_text())
        reused = _comparable(config.status().document)
    assert reused == _derived_status(config, monkeypatch)
    assert written["in_sync"] and written["counts"] == reused["counts"]
    run_id = written["run"]["id"]
    assert [r["run_id"] for r in written["resources"]] == [run_id] * len(written["resources"])
    assert [{**r, "run_id": 0} for r in _comparable(written)["resources"]] == [
        {**r, "run_id": 0} for r in reused["resources"]
    ]


def test_a_change_the_derivation_reads_is_derived_again(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Config.open(sample, sample.parent / "state")
    assert asyncio.run(config.reconcile()).exit_code == 0
    derived: list[int] = []
    derive_fast = derive.derive_fast

    def counting(*args: Any) -> Any:
        derived.append(1)
        return derive_fast(*args)

    monkeypatch.setattr(derive, "derive_fast", counting)

    # Another user's change, planned: operations on mivb3.
    record = element_record(config.state_dir, "mivb3", "users", "jpatel")
    edit_element(config.state_dir, "mivb3", "users", "jpatel", {**record, "last_name": "Oob"})
    asyncio.run(config.plan())
    doc = _comparable(config.status().document)
    assert derived and not doc["in_sync"]
    assert doc == _derived_status(config, monkeypatch)

    # In sync again (the second run has nothing to do), then a sealed part
    # that was tampered with is not believed.
    assert asyncio.run(config.reconcile()).exit_code == 0
    assert asyncio.run(config.reconcile()).exit_code == 0
    part = config.state_dir / "memo" / reuse.FILE_NAME
    data = bytearray(part.read_bytes())
    data[-1] ^= 1
    part.write_bytes(bytes(data))
    derived.clear()
    doc = _comparable(config.status().document)
    assert derived and doc["in_sync"]

    # A busy element: its writes wait as pending updates, and the status says so.
    edit_element(config.state_dir, "mivb3", "users", "jpatel", {**record, "last_name": "Oob2"})
    store = ElementStore(config.state_dir / "elements" / "mivb3.sqlite")
    try:
        store.set_state("locked")
    finally:
        store.close()
    assert asyncio.run(config.reconcile()).exit_code == 4
    derived.clear()
    doc = _comparable(config.status().document)
    assert derived and not doc["in_sync"] and doc["counts"]["pending_updates"] >= 1
    assert doc == _derived_status(config, monkeypatch)


def test_an_element_down_since_the_last_report_is_derived_again(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _in_sync(sample)
    assert _comparable(config.status().document)["in_sync"]
    store = ElementStore(config.state_dir / "elements" / "mivb3.sqlite")
    try:
        store.set_state("offline")
    finally:
        store.close()
    applied = asyncio.run(config.reconcile())
    assert applied.exit_code != 0
    doc = _comparable(config.status().document)
    assert not doc["in_sync"] and doc["elements"]["mivb3"]["sync"] != derive.COMPLETED
    assert doc == _derived_status(config, monkeypatch)


def _section(page: str) -> str:
    start = page.index('<section id="resources-section"')
    return page[start : page.index("</section>", start) + len("</section>")]


def test_the_pages_resource_list_is_kept_and_read_back_only_for_the_same_entries(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reconcile with nothing to do reads the page's resource list back
    instead of rendering it again; a list that changed, or a kept one that
    was tampered with, is rendered again: each page's list is its document's."""
    config = _in_sync(sample)
    kept = config.state_dir / "memo" / "report-html.marshal"  # publish/kept_html.py
    assert kept.is_file()
    rendered: list[int] = []
    render = status_html._resources

    def counting(doc: Any) -> str:
        rendered.append(1)
        return render(doc)

    def page_agrees(applied: Any) -> dict[str, Any]:
        doc = json.loads(applied.status_file.read_text())
        page = (applied.status_file.parent / "index.html").read_text()
        assert _section(page) == status_html.resources_section(doc)
        return doc

    monkeypatch.setattr(status_html, "_resources", counting)
    applied = asyncio.run(config.reconcile())
    assert applied.exit_code == 0 and not rendered
    assert page_agrees(applied)["resources"]
    rendered.clear()  # page_agrees renders to compare

    # Another user's change: the list is not the kept one's.
    record = element_record(config.state_dir, "mivb3", "users", "jpatel")
    edit_element(config.state_dir, "mivb3", "users", "jpatel", {**record, "last_name": "Oob"})
    store = ElementStore(config.state_dir / "elements" / "mivb3.sqlite")
    try:
        store.set_state("locked")  # held as a pending update: the list shows it
    finally:
        store.close()
    applied = asyncio.run(config.reconcile())
    assert applied.exit_code == 4 and rendered
    doc = page_agrees(applied)
    assert any(r["state"] != derive.COMPLETED for r in doc["resources"])
    store = ElementStore(config.state_dir / "elements" / "mivb3.sqlite")
    try:
        store.set_state("running")
    finally:
        store.close()
    assert asyncio.run(config.reconcile()).exit_code == 0
    assert asyncio.run(config.reconcile()).exit_code == 0

    # A kept list tampered with is not believed.
    data = bytearray(kept.read_bytes())
    data[-1] ^= 1
    kept.write_bytes(bytes(data))
    rendered.clear()
    applied = asyncio.run(config.reconcile())
    assert applied.exit_code == 0 and rendered
    page_agrees(applied)
