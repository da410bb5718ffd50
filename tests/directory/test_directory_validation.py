"""A directory element's settings are checked before anything connects: each bad
combination names where it is and what to write instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.validate.base import NETWORK, validate

DIRECTORY = """\
  - name: dir1
    type: directory
    ceid: 9
    driver: ldap
    connection:
      url: {url}
      token: {{env: DIR1_BIND_PASSWORD}}
    directory:
      base_dn: ou=people,dc=example,dc=com
      bind_dn: cn=provgit,dc=example,dc=com
{extra}"""


def network(url: str = "ldaps://dc1.example.com", extra: str = "", micollab: bool = False) -> str:
    text = (
        NETWORK if micollab else NETWORK.replace("type: micollab", "type: mivb\n    cluster: west")
    )
    return text.replace("elements:\n", "elements:\n" + DIRECTORY.format(url=url, extra=extra), 1)


def messages(tmp_path: Path, text: str) -> list[str]:
    result = validate(tmp_path, {"network.yaml": text})
    return [f"{d.location}: {d.message}" for d in result.diagnostics]


def test_a_directory_element_instead_of_the_micollab_validates(tmp_path: Path) -> None:
    assert messages(tmp_path, network()) == []


@pytest.mark.parametrize(
    ("url", "extra", "expected"),
    [
        ("https://dc1.example.com", "", "needs connection.url ldap://host[:port] or ldaps://"),
        ("ldaps://dc1.example.com", "      start_tls: true\n", "ldaps:// connection is TLS"),
        ("ldap://dc1.example.com", "      preset: novell\n", "'preset'"),
        ("ldap://dc1.example.com", "      base_dn2: x\n", "base_dn2"),
        ("ldap://dc1.example.com", "      attributes: {login_id: null}\n", "login_id cannot"),
        ("ldap://dc1.example.com", "      attributes: {pager: pager}\n", "pager"),
    ],
)
def test_bad_directory_settings_are_refused_naming_the_problem(
    tmp_path: Path, url: str, extra: str, expected: str
) -> None:
    found = messages(tmp_path, network(url, extra))
    assert any(expected in m for m in found), found


def test_ldap_url_on_a_call_server_is_refused(tmp_path: Path) -> None:
    text = network().replace(
        "    cluster: east\n", "    cluster: east\n    connection: {url: 'ldap://x'}\n", 1
    )
    found = messages(tmp_path, text)
    assert any("only a directory element" in m for m in found), found


def test_directory_beside_a_micollab_is_refused_at_both(tmp_path: Path) -> None:
    found = messages(tmp_path, network(micollab=True))
    assert len(found) == 1, found
    assert "directory element 'dir1' and MiCollab 'mc'" in found[0]
    assert "MiCollab IDS creates its users from the directory" in found[0]
