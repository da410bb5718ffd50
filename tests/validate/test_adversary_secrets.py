"""Secret references a config author could use to send one secret where another belongs.

The network's `secret_key` signs plans; an element's `token` is its API
credential. Neither may be written to an element as a user's PIN: whoever can
read PINs there (the element's admins, its database) would hold the key that
signs plans, or another element's credential.
"""

from __future__ import annotations

from pathlib import Path

from .base import NETWORK, SETTINGS, TELEPHONY, summary, validate

KEYED = SETTINGS + "secret_key: {env: PROVGIT_SECRET_KEY}\n"


def test_the_signing_key_is_refused_as_a_voicemail_pin(tmp_path: Path) -> None:
    telephony = TELEPHONY.replace("{env: ALICE_PIN}", "{env: PROVGIT_SECRET_KEY}")
    found = validate(tmp_path, {"provgit.yaml": KEYED, "telephony.yaml": telephony})
    assert not found.ok
    lines = summary(found.diagnostics)
    assert any(
        line.startswith("telephony.yaml:32:5: ")
        and "env:PROVGIT_SECRET_KEY is the network's secret_key" in line
        for line in lines
    ), lines


def test_the_signing_key_file_is_refused_as_a_pin_through_another_path(tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "key"
    secret.parent.mkdir()
    secret.write_text("k" * 32 + "\n")
    (tmp_path / "outside" / "alias").symlink_to("key")
    settings = SETTINGS + f"secret_key: {{file: {secret}}}\n"
    telephony = TELEPHONY.replace("{env: ALICE_PIN}", f"{{file: {secret.parent / 'alias'}}}")
    found = validate(tmp_path / "cfg", {"provgit.yaml": settings, "telephony.yaml": telephony})
    assert not found.ok
    assert any("is the network's secret_key" in line for line in summary(found.diagnostics))


def test_an_element_token_is_refused_as_a_pin(tmp_path: Path) -> None:

    network = NETWORK.replace(
        "  - name: mc\n    type: micollab\n    ceid: 1\n",
        "  - name: mc\n    type: micollab\n    ceid: 1\n"
        "    driver: http\n    connection: {url: 'http://127.0.0.1:9', token: {env: MC_TOKEN}}\n",
    )
    telephony = TELEPHONY.replace("{env: ALICE_PIN}", "{env: MC_TOKEN}")
    found = validate(tmp_path, {"network.yaml": network, "telephony.yaml": telephony})
    assert not found.ok
    lines = summary(found.diagnostics)
    assert any("env:MC_TOKEN is element mc's connection token" in line for line in lines), lines


def test_the_signing_key_is_refused_as_an_element_token(tmp_path: Path) -> None:

    network = NETWORK.replace(
        "  - name: mc\n    type: micollab\n    ceid: 1\n",
        "  - name: mc\n    type: micollab\n    ceid: 1\n    driver: http\n"
        "    connection: {url: 'http://127.0.0.1:9', token: {env: PROVGIT_SECRET_KEY}}\n",
    )
    found = validate(tmp_path, {"provgit.yaml": KEYED, "network.yaml": network})
    assert not found.ok
    assert any("is the network's secret_key" in line for line in summary(found.diagnostics))


def test_one_token_shared_by_two_elements_is_allowed(tmp_path: Path) -> None:

    conn = "    driver: http\n    connection: {url: 'http://127.0.0.1:9', token: {env: TOK}}\n"
    network = NETWORK.replace("    ceid: 1\n", "    ceid: 1\n" + conn).replace(
        "    ceid: 5\n", "    ceid: 5\n" + conn
    )
    found = validate(tmp_path, {"network.yaml": network})
    assert found.ok, summary(found.diagnostics)


def test_a_password_written_into_an_element_url_is_refused(tmp_path: Path) -> None:
    # The config repository never holds a secret's value: a user:password in
    # the URL would be committed, pushed and copied into every clone.
    network = NETWORK.replace(
        "  - name: mc\n    type: micollab\n    ceid: 1\n",
        "  - name: mc\n    type: micollab\n    ceid: 1\n    driver: http\n"
        "    connection: {url: 'http://admin:hunter2@127.0.0.1:9/api'}\n",
    )
    found = validate(tmp_path, {"network.yaml": network})
    lines = summary(found.diagnostics)
    assert not found.ok
    assert any("user name or password" in line for line in lines), lines
    assert not any("hunter2" in line for line in lines), lines
    assert all("hunter2" not in (d.hint or "") for d in found.diagnostics)
