"""A secret file is a small regular file: not a device, a pipe or a kernel pseudo-file.

`{file: /dev/zero}` as a PIN made `plan` read until memory ran out (a
MemoryError traceback); a named pipe blocked it for ever; `/proc/self/environ`
sent the whole environment of the apply job (every CI secret and the signing
key) to an element as one user's PIN.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provgit.model.common import SecretRef
from provgit.secrets import SecretUnavailable, resolve

from .base import TELEPHONY, summary, validate


@pytest.mark.parametrize("path", ["/dev/zero", "/proc/self/environ", "/dev/stdin"])
def test_a_pseudo_file_is_refused_at_its_line(tmp_path: Path, path: str) -> None:
    telephony = TELEPHONY.replace("{env: ALICE_PIN}", f"{{file: {path}}}")
    found = validate(tmp_path / "cfg", {"telephony.yaml": telephony})
    lines = summary(found.diagnostics)
    assert any(
        line.startswith("telephony.yaml:32:5: ") and "not a regular file" in line for line in lines
    ), lines


@pytest.mark.parametrize("path", ["/dev/zero", "/proc/self/environ"])
def test_resolving_a_pseudo_file_says_so_and_reads_nothing(path: str) -> None:
    with pytest.raises(SecretUnavailable, match="not a regular file"):
        resolve(SecretRef(file=path))


def test_resolving_a_named_pipe_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "pin"
    os.mkfifo(fifo)
    with pytest.raises(SecretUnavailable, match="not a regular file"):
        resolve(SecretRef(file=str(fifo)))


def test_a_huge_secret_file_is_read_only_as_far_as_its_first_line(tmp_path: Path) -> None:
    big = tmp_path / "pin"
    big.write_bytes(b"4321\n" + b"x" * 10_000_000)
    assert resolve(SecretRef(file=str(big))) == "4321"
    one_line = tmp_path / "one"
    one_line.write_bytes(b"9" * 10_000_000)
    with pytest.raises(SecretUnavailable, match="longer than"):
        resolve(SecretRef(file=str(one_line)))
