"""End to end: the sample network with a directory element instead of its
MiCollab reconciles its users into a real slapd, plans empty afterwards, and
sees an out-of-band `ldapmodify` as a change on the directory."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.apply.helpers import cli
from tests.directory import slapd

from provgit.source import read_directory
from provgit.validate import validate_source

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample-config"
MICOLLAB = re.compile(r"  - name: micollab1\n(?:    .*\n)+")


def directory_config(tmp_path: Path, server: slapd.Slapd, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "config"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".provgit"))
    for line in (ROOT / "scripts" / "demo-secrets.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
    elements = root / "network" / "elements.yaml"
    text = elements.read_text()
    assert MICOLLAB.search(text)
    (tmp_path / "bind-password").write_text(slapd.ROOT_PW + "\n")
    directory = (
        "  - name: dir1\n"
        "    type: directory\n"
        "    ceid: 2\n"
        "    driver: ldap\n"
        "    connection:\n"
        f"      url: {server.url}\n"
        f"      token: {{file: {tmp_path / 'bind-password'}}}\n"
        "    directory:\n"
        f"      base_dn: {slapd.BASE_OU}\n"
        f"      bind_dn: {slapd.ROOT_DN}\n"
        "      preset: active_directory\n"
        f"      object_classes: [{', '.join(slapd.AD_OBJECT_CLASSES)}]\n"
    )
    elements.write_text(MICOLLAB.sub(directory, text, count=1))
    return root


def entries(server: slapd.Slapd, flt: str, *attrs: str) -> str:
    return subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-H", server.url, "-b", slapd.BASE_OU, flt, *attrs],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


@pytest.mark.slow
def test_sample_users_reconcile_into_the_directory_and_plan_empty(
    tmp_path: Path, directory: slapd.Slapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = directory_config(tmp_path, directory, monkeypatch)
    users = validate_source(read_directory(root), None).state.of("users")
    first = cli("reconcile", str(root))
    assert first.code == 0, first.out + first.err
    listed = entries(directory, "(description=managed-by=provgit)", "sAMAccountName")
    assert listed.count("sAMAccountName: ") == len(users)
    some = next(iter(users.values()))
    entry = entries(directory, f"(sAMAccountName={some.login_id})")
    assert f"sn: {some.last_name}" in entry and f"ipPhone: {some.host}" in entry

    again = cli("plan", str(root))
    assert again.code == 0, again.out + again.err
    assert "0 to add, 0 to modify, 0 to delete" in again.out, again.out

    directory.ldap(
        "ldapmodify",
        f"dn: cn={some.login_id},{slapd.BASE_OU}\nchangetype: modify\n"
        "replace: sn\nsn: Changed-Out-Of-Band\n",
    )
    drift = cli("plan", str(root))
    assert f"~ modify users/{some.login_id}" in drift.out, drift.out
    assert f'last_name: "Changed-Out-Of-Band" -> "{some.last_name}"' in drift.out
    assert f"drift: users/{some.login_id} on dir1 changed outside provgit" in drift.out
