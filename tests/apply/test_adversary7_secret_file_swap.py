"""Adversary 7: a secret file swapped for a link between provgit's check of
its name and its read. The checks (a kernel file? a state directory's key?)
looked at the name; the read opened whatever the name was by then: a link to
/proc/self/environ gave every variable of the job (each secret PIN among them)
as one PIN for an element, a link to secret.key gave the signing key. The
checks now hold for the file opened."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from provgit import secrets
from provgit.model.common import SecretRef
from provgit.secrets import SecretUnavailable, local_key, resolve


def _swap_after(
    monkeypatch: pytest.MonkeyPatch, check: str, victim: Path, link_to: Path
) -> list[Path]:
    """Make `victim` a link to `link_to` right after `check` has passed on it:
    the race a local writer wins now and then, won every time."""
    original: Callable[[Path], bool] = getattr(secrets, check)
    swapped: list[Path] = []

    def then_swap(path: Path) -> bool:
        verdict = original(path)
        if not swapped and Path(path) == victim:
            tmp = victim.with_name(victim.name + ".swap")
            tmp.symlink_to(link_to)
            os.replace(tmp, victim)
            swapped.append(victim)
        return verdict

    monkeypatch.setattr(secrets, check, then_swap)
    return swapped


@pytest.fixture(autouse=True)
def _no_key_file_memory() -> None:
    secrets._KEY_FILES.clear()


@pytest.mark.parametrize("keyed", [False, True], ids=["one-value-file", "key-file"])
def test_a_pin_file_linked_to_proc_environ_after_the_check_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyed: bool
) -> None:
    pin = tmp_path / "pins.env"
    # The job's variables as a key file's first line reads them: NAME=rest.
    first = (Path("/proc/self/environ").read_bytes().split(b"\0")[0]).decode()
    name = first.partition("=")[0]
    pin.write_text(f"{name}=4321\n" if keyed else "4321\n")
    ref = SecretRef(file=str(pin), key=name) if keyed else SecretRef(file=str(pin))
    swapped = _swap_after(monkeypatch, "pseudo_file", pin, Path("/proc/self/environ"))
    with pytest.raises(SecretUnavailable) as refused:
        value = resolve(ref)
        assert "\0" not in value, "the job's environment went out as this PIN"
    assert swapped, "the swap did not happen: the test proves nothing"
    assert "not a regular file" in str(refused.value)
    assert "\0" not in str(refused.value) and first not in str(refused.value)


def test_a_pin_file_linked_to_the_state_key_after_the_check_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    key = local_key(state)
    (state / "journal.sqlite").write_bytes(b"")  # a state directory, as provgit leaves one
    pin = tmp_path / "pin.txt"
    pin.write_text("4321\n")
    # (A key file reference cannot name it: the key's one hex line is no NAME=value.)
    swapped = _swap_after(monkeypatch, "state_dir_key", pin, state / "secret.key")
    with pytest.raises(SecretUnavailable) as refused:
        value = resolve(SecretRef(file=str(pin)))
        assert value != key.hex(), "the signing key went out as a PIN"
    assert swapped, "the swap did not happen: the test proves nothing"
    assert key.hex() not in str(refused.value) and "signing key" in str(refused.value)
