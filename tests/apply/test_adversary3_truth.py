"""Status truth when the careless admin or the element itself changes what
provgit believes: attacks of the third adversary pass, each against real
simulator processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provgit import exitcodes

from .helpers import Sim, cli, cli_process, start_sims, write_config

pytestmark = pytest.mark.slow


def _repoint(config: Path, old: Sim, new: Sim) -> None:
    net = config / "net.yaml"
    net.write_text(net.read_text().replace(old.url, new.url))


def test_an_element_replaced_by_a_fresh_server_gets_everything_again_not_sync_completed(
    sims: list[Sim], tmp_path: Path
) -> None:
    # cs1 is replaced (a new server, or the old one reinstalled): the admin
    # points the config at it. Its revision starts again at 0, below the one
    # provgit last observed; the feed "since 4" on it is empty. Trusting it
    # said Sync Completed on an element that holds nothing.
    cs1, _ = sims
    config = write_config(tmp_path / "config", sims, users=4)
    assert cli("reconcile", str(config)).code == 0
    assert cs1.records()["users"]
    (fresh,) = start_sims(tmp_path / "replacement", [("cs1", "mivb")])
    try:
        _repoint(config, cs1, fresh)
        r = cli("reconcile", str(config), "--format", "json")
        assert r.code == 0, r.out
        by = {e["element"]: e for e in json.loads(r.out)["elements"]}
        assert by["cs1"]["counts"]["ok"] > 0, by["cs1"]
        assert fresh.records()["users"].keys() == cs1.records()["users"].keys()
        assert fresh.records()["cos"].keys() == cs1.records()["cos"].keys() != set()
        status = json.loads(cli("status", str(config), "--format", "json").out)
        assert status["in_sync"] is True
    finally:
        fresh.stop()


def test_an_element_reinstalled_at_the_same_address_gets_everything_again(
    sims: list[Sim], tmp_path: Path
) -> None:
    # Nothing in the config changes (the plan memo stands): the server at
    # cs1's address comes back empty, at the revision provgit last read it
    # (0), below the one its writes reached.
    cs1, _ = sims
    config = write_config(tmp_path / "config", sims, users=4)
    assert cli("reconcile", str(config)).code == 0
    held = cs1.records()
    cs1.stop()
    port = cs1.url.rsplit(":", 1)[1]
    (again,) = start_sims(tmp_path / "reinstalled", [("cs1", "mivb")], "--port", port)
    try:
        assert again.url == cs1.url
        r = cli("reconcile", str(config), "--format", "json")
        assert r.code == 0, r.out
        by = {e["element"]: e for e in json.loads(r.out)["elements"]}
        assert by["cs1"]["counts"]["ok"] > 0, by["cs1"]
        assert {c: set(v) for c, v in again.records().items()} == {
            c: set(v) for c, v in held.items()
        }
        assert cli("status", str(config)).code == exitcodes.OK
    finally:
        again.stop()


@pytest.mark.parametrize("lie", ["drop", "alter"])
def test_an_element_that_answers_done_but_keeps_something_else_is_never_sync_completed(
    sims: list[Sim], tmp_path: Path, lie: str
) -> None:
    # cs1 answers every write 200 with a revision, then stores nothing
    # ("drop") or other values ("alter"). Its answer is not its word on what
    # it holds: its change feed is, and the status must say so.
    cs1, _ = sims
    config = write_config(tmp_path / "config", sims, users=4)
    assert cli("reconcile", str(config)).code == 0
    cs1.faults(lie=lie)
    write_config(tmp_path / "config", sims, users=4, first_name="Bea")
    r = cli("reconcile", str(config), "--format", "json")
    assert r.code == exitcodes.APPLIED_WITH_ERRORS, r.out
    by = {e["element"]: e for e in json.loads(r.out)["elements"]}
    assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
    assert by["cs1"]["counts"]["failed"] > 0, by["cs1"]
    assert by["cs2"]["status"] == "Sync Completed"
    for _ in range(2):  # and every later run says it again
        status = json.loads(cli("status", str(config), "--format", "json").out)
        assert status["in_sync"] is False
        rows = status["elements"]
        assert rows["cs1"]["status"] != "Sync Completed", rows["cs1"]
        assert rows["cs2"]["status"] == "Sync Completed"
        assert cli("reconcile", str(config)).code == exitcodes.APPLIED_WITH_ERRORS

    # Told the truth again: the errors an admin retries land.
    cs1.faults(lie=None)
    retried = cli("errors", "retry", "--all", "-C", str(config))
    assert retried.code == 0, retried.out
    assert cli("reconcile", str(config)).code == 0
    assert cli("status", str(config)).code == 0
    assert {u["first_name"] for u in cs1.records()["users"].values()} == {"Bea"}


def test_escape_sequences_an_element_sends_never_reach_the_terminal_or_the_reports(
    sims: list[Sim], tmp_path: Path
) -> None:
    # A hostile element's refusal reason: retitle the window, write the
    # clipboard (OSC 52), clear the screen, move up and print a fake verdict;
    # then 100,000 characters to flood the journal and every CI log.
    cs1, _ = sims
    config = write_config(tmp_path / "config", sims, users=4)
    hostile = (
        "\x1b]0;owned\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x1b[1A\r"
        "cs1  Sync Completed\u202e" + "x" * 100_000
    )
    cs1.faults(refuse=[{"collection": "users", "key": "user0"}], refuse_reason=hostile)
    ran = [cli_process("reconcile", str(config))]
    assert ran[0].code == exitcodes.APPLIED_WITH_ERRORS, ran[0].out
    ran += [
        cli_process("status", str(config)),
        cli_process("errors", "list", "-C", str(config)),
        cli_process("status", str(config), "--format", "json"),
    ]
    for r in ran:
        for stream in (r.out, r.err):
            assert "\x1b" not in stream and "\x07" not in stream and "\u202e" not in stream
            assert "x" * 2000 not in stream
    assert "<U+001B>]0;owned<U+0007>" in ran[2].out  # shown, so the admin sees it
    state = config / ".provgit" / "status"
    for report in ("status.json", "status.md", "index.html", "feed.atom"):
        text = (state / report).read_text()
        assert "\x1b" not in text and "\\u001b" not in text.lower(), report
