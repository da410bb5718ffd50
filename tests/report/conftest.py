"""A small network reconciled for real, with a refused record and an offline element,
its reports written the way apply/reconcile write them (with the desired state and
the config root, so links and the git note are there).

Built once per xdist worker (session scope under tmp_path_factory, so workers
never share a directory) and read-only for the tests that use it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provgit.apply import ApplyOptions
from provgit.cli import applying
from provgit.cli.plan import make_plan
from provgit.drivers.base import WriteOp
from provgit.journal import Journal
from provgit.plan import PlanOptions
from provgit.publish import Written, reports_dir, write_reports
from provgit.simulator.store import ElementStore

PIN = "73195286"  # must never appear in a report
PIN_ENV = "REPORT_TEST_PIN"

SETTINGS = "version: 1\nnetwork: lab\n{extra}"

NET = """\
elements:
  - name: mcl
    type: micollab
    ceid: 1
    reach_through: "https://mcl.example.net/admin/{form}?key={key}"
  - name: mivb1
    type: mivb
    ceid: 2
    cluster: east
    admin_group: east
    partner: mivb2
    reach_through: "https://{element}.example.net/admin/{form}?key={key}"
  - name: mivb2
    type: mivb
    ceid: 3
    cluster: east
    admin_group: east
    partner: mivb1
    reach_through: "https://{element}.example.net/admin/{form}?key={key}"
  - {name: ivr1, type: ivr, ceid: 4}
classes_of_service:
  - {number: 1, comment: Default}
templates:
  - name: Basic
    phones: [{label: Desk, device_type: "6920", primary: true}]
    cos: {day: 1}
roles:
  - {name: Agent, template: Basic}
users:
  - login_id: jdoe
    first_name: John
    last_name: Doe
    role: Agent
    host: mivb1
    voicemail_pin: {env: REPORT_TEST_PIN}
    services:
      - dn: "2001"
ivr_media_servers:
  - {name: ms1, host: 10.0.0.5}
"""

# Added for the second run: asmith's DN is taken on mivb2 by a record provgit
# did not create, so mivb2 refuses it (a distribution error).
ASMITH = """\
  - login_id: asmith
    first_name: Ann
    last_name: Smith
    role: Agent
    host: mivb1
    services:
      - dn: "2002"
"""


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.net",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.net",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    p = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=30
    )
    assert p.returncode == 0, p.stderr
    return p.stdout


def write_config(root: Path, users: str = "", extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "provgit.yaml").write_text(SETTINGS.format(extra=extra))
    net = NET.replace("ivr_media_servers:", users + "ivr_media_servers:")
    (root / "net.yaml").write_text(net)
    return root


def reconcile(root: Path) -> Written:
    """What `provgit reconcile ROOT` does, with the reports written from the state."""
    sdir = root / ".provgit"
    run = asyncio.run(make_plan(root, sdir, PlanOptions(False, False, False, ()), "json"))
    options = ApplyOptions(command="reconcile", check_stale=False, partial=False, fresh=True)
    journal = Journal.open(sdir)
    try:
        result = asyncio.run(
            applying.execute(
                run.plan, run.state, root, sdir, journal, options, applying.PlainProgress()
            )
        )
        return write_reports(
            reports_dir(run.state, root, sdir),
            journal,
            result=result,
            state=run.state,
            config_root=root,
        )
    finally:
        journal.close()


def seed_intruder(root: Path) -> None:
    """A user record on mivb2 holding DN 2002, made by its own admin (not provgit)."""
    store = ElementStore(root / ".provgit" / "elements" / "mivb2.sqlite")
    try:
        (_, _, fields) = store._db.execute(
            "SELECT collection, key, fields FROM records WHERE collection = 'users'"
        ).fetchone()
        record = {k: v for k, v in json.loads(fields).items() if not k.startswith("_")}
        record["services"][0]["dn"] = "2002"
        store.write(WriteOp("put", "users", "intruder", record), force=True)
    finally:
        store.close()


@dataclass
class Lab:
    root: Path  # the config directory, also a git work tree
    reports: Path
    written: Written
    commit: str

    @property
    def doc(self) -> dict[str, Any]:
        return self.written.document

    def read(self, name: str) -> str:
        return (self.reports / name).read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    mp = pytest.MonkeyPatch()
    mp.setenv(PIN_ENV, PIN)
    mp.delenv("PROVGIT_STATE_DIR", raising=False)
    try:
        root = write_config(tmp_path_factory.mktemp("lab") / "config")
        git(root, "init", "-q", "-b", "main")
        (root / ".gitignore").write_text(".provgit/\n")
        git(root, "add", ".")
        git(root, "commit", "-q", "-m", "lab network")
        first = reconcile(root)
        assert first.document["in_sync"], first.document
        seed_intruder(root)
        write_config(root, users=ASMITH)
        git(root, "commit", "-q", "-am", "add asmith")
        written = reconcile(root)
        commit = git(root, "rev-parse", "HEAD").strip()
        yield Lab(root, written.directory, written, commit)
    finally:
        mp.undo()
