"""`{file: PATH, key: NAME}`: many secrets in one key file of `NAME=value` lines.

Real `provgit` processes and an embedded MiCollab, as in test_admission.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from provgit.model.common import SecretRef
from provgit.secrets import SecretUnavailable, parse_ref, resolve

from .helpers import cli_process, read_store, write_config

# Values no output may hold (they would show a secret leaked).
PINS = {"PIN_JDOE": "73914628", "PIN_ASMITH": "60285741"}


def _key_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "secrets" / "pins.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# voicemail PINs", "", *(f"{k}={v}" for k, v in PINS.items())]
    path.write_text("\n".join(lines) + "\n" + extra)
    path.chmod(0o600)  # as the README asks: a key file every user may read is warned of
    return path


def _config(tmp_path: Path, pins: Path, second_key: str) -> Path:
    config = write_config(tmp_path / "config", [], users=0, embedded_mcl=True)
    (config / "net.yaml").write_text(
        "elements:\n"
        "  - {name: mcl, type: micollab, ceid: 1}\n"
        "  - {name: cs1, type: mivb, ceid: 2, cluster: east}\n"
        "users:\n"
        "  - login_id: jdoe\n"
        "    first_name: J\n"
        "    last_name: Doe\n"
        "    host: cs1\n"
        "    services: [{dn: '3000'}]\n"
        f"    voicemail_pin: {{file: {pins}, key: PIN_JDOE}}\n"
        "  - login_id: asmith\n"
        "    first_name: A\n"
        "    last_name: Smith\n"
        "    host: cs1\n"
        "    services: [{dn: '3001'}]\n"
        f"    voicemail_pin: {{file: {pins}, key: {second_key}}}\n"
    )
    return config


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PROVGIT_STATE_DIR"}


def test_validate_secrets_locates_a_key_missing_from_the_key_file(tmp_path: Path) -> None:
    pins = _key_file(tmp_path)
    config = _config(tmp_path, pins, "PIN_NOBODY")
    ran = cli_process("validate", str(config), "--secrets", env=_env())
    assert ran.code == 1, ran.out + ran.err
    assert (
        f"net.yaml:16:5: error: [users/asmith] secret {{file: {pins}, key: PIN_NOBODY}} "
        "cannot be read (key PIN_NOBODY is not in the file)" in ran.out
    )
    assert "add a line PIN_NOBODY=VALUE" in ran.out
    assert "[users/jdoe]" not in ran.out  # its key is in the file
    for value in PINS.values():
        assert value not in ran.out + ran.err


def test_reconcile_resolves_every_pin_from_one_key_file_and_shows_no_value(
    tmp_path: Path,
) -> None:
    pins = _key_file(tmp_path)
    config = _config(tmp_path, pins, "PIN_ASMITH")
    ok = cli_process("validate", str(config), "--secrets", env=_env())
    assert ok.code == 0, ok.out + ok.err
    plan = cli_process("plan", str(config), "--format", "json", env=_env())
    assert plan.code == 0, plan.err
    assert json.loads(plan.out)["errors"] == []
    ran = cli_process("reconcile", str(config), "--format", "json", env=_env())
    assert ran.code == 0, ran.out + ran.err
    users = read_store(config / ".provgit" / "elements" / "mcl.sqlite")["users"]
    assert sorted(users) == ["asmith", "jdoe"]
    everything = plan.out + plan.err + ran.out + ran.err
    for value in PINS.values():
        assert value not in everything


def test_a_key_file_reference_resolves_to_its_line_and_round_trips() -> None:
    ref = SecretRef(file="/run/secrets/pins.env", key="PIN_JDOE")
    assert ref.describe() == "key:PIN_JDOE@/run/secrets/pins.env"
    assert parse_ref(ref.describe()) == ref


def test_key_file_values_are_the_rest_of_the_line(tmp_path: Path) -> None:
    path = tmp_path / "pins.env"
    path.write_text("# comment\n\nA = 1234 \nB=x=y\n")
    assert resolve(SecretRef(file=str(path), key="A")) == "1234"
    assert resolve(SecretRef(file=str(path), key="B")) == "x=y"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("A=1\nnot a pair 47113592\n", "line 2 is not NAME=value"),
        ("A=1\nA=47113592\n", "line 2 repeats A"),
    ],
)
def test_a_damaged_key_file_names_the_line_never_its_content(
    tmp_path: Path, content: str, why: str
) -> None:
    path = tmp_path / "damaged.env"
    path.write_text(content)
    with pytest.raises(SecretUnavailable) as e:
        resolve(SecretRef(file=str(path), key="A"))
    assert str(e.value) == f"secret file {path}: {why}"
    assert "47113592" not in str(e.value)


def test_an_env_reference_cannot_name_a_key() -> None:
    with pytest.raises(ValueError, match="key names a secret in a key file"):
        SecretRef(env="PIN", key="PIN_JDOE")


def test_a_key_file_that_is_a_kernel_file_or_a_pipe_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pins.fifo"
    os.mkfifo(fifo)
    for path in ("/proc/self/environ", str(fifo)):
        with pytest.raises(SecretUnavailable, match="is not a regular file"):
            resolve(SecretRef(file=path, key="PIN_JDOE"))


def test_a_token_and_pins_in_one_key_file_are_different_secrets(tmp_path: Path) -> None:
    from provgit.source import read_directory
    from provgit.validate import validate_source

    pins = _key_file(tmp_path, extra="TOKEN_CS1=not-a-pin\n")
    config = _config(tmp_path, pins, "PIN_ASMITH")
    net = (config / "net.yaml").read_text()
    token = f"connection: {{token: {{file: {pins}, key: TOKEN_CS1}}}}"
    net = net.replace("cluster: east}", f"cluster: east, {token}}}")
    (config / "net.yaml").write_text(net)
    assert validate_source(read_directory(config), None).ok
    # The same key as the token's, as a PIN: refused.
    (config / "net.yaml").write_text(net.replace("key: PIN_ASMITH", "key: TOKEN_CS1"))
    valid = validate_source(read_directory(config), None)
    assert [d.message for d in valid.diagnostics if "connection token" in d.message]


def test_a_key_file_cut_off_mid_line_is_refused_and_no_truncated_pin_reaches_an_element(
    tmp_path: Path,
) -> None:
    """An in-place rewrite (`cat new > pins.env`) read half-written: its last
    line is cut off ("PIN_ASMITH=602"). That is not a PIN to send: the key file
    is refused, naming the line, and asmith's PIN is not written at all."""
    pins = _key_file(tmp_path)
    whole = pins.read_text()
    pins.write_text(whole[: whole.index("60285741") + 3])  # "...PIN_ASMITH=602"
    with pytest.raises(SecretUnavailable) as e:
        resolve(SecretRef(file=str(pins), key="PIN_ASMITH"))
    assert str(e.value) == (
        f"secret file {pins}: line 4 does not end with a newline (the file cut off while "
        "being written?); end its last line with a newline"
    )
    config = _config(tmp_path, pins, "PIN_ASMITH")
    ran = cli_process("reconcile", str(config), "--format", "json", env=_env())
    assert ran.code != 0, ran.out + ran.err
    users = read_store(config / ".provgit" / "elements" / "mcl.sqlite").get("users", {})
    assert "602" not in json.dumps(users)
    assert "line 4 does not end with a newline" in ran.out + ran.err
    for value in PINS.values():
        assert value not in ran.out + ran.err
