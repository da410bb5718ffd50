"""A small valid network that each bad-input case breaks in one place."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from provgit.diagnostics import Diagnostic
from provgit.source import read_directory
from provgit.validate import Validated, validate_source


@dataclass(frozen=True)
class Symlink:
    """A file of a case that is a symlink to `target` (relative to the link)."""

    target: str


def wav(frames: int = 8) -> bytes:
    """A tiny real PCM WAV file (8 kHz mono 16-bit silence)."""
    data = b"\0\0" * frames
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


SETTINGS = """\
version: 1
network: test
"""

NETWORK = """\
elements:
  - name: mc
    type: micollab
    ceid: 1
  - name: cs1
    type: mivb
    ceid: 2
    cluster: east
    admin_group: ag1
    partner: cs2
  - name: cs2
    type: mivb
    ceid: 3
    cluster: east
    admin_group: ag1
    partner: cs1
  - name: cs3
    type: mivb
    ceid: 4
    cluster: west
    admin_group: ag2
  - name: ivr1
    type: ivr
    ceid: 5
"""

TELEPHONY = """\
classes_of_service:
  - number: 1
    comment: basic
  - number: 2
    comment: night
cor_groups:
  - number: 1
    members: [1, 2]
departments:
  - name: Sales
locations:
  - name: Ottawa
templates:
  - name: Basic
    admin_group: ag1
    phones:
      - label: desk
        device_type: "6920"
        primary: true
    cos: {day: 1}
roles:
  - name: Staff
    template: Basic
users:
  - login_id: alice
    first_name: Alice
    last_name: Smith
    department: Sales
    location: Ottawa
    role: Staff
    host: cs1
    voicemail_pin: {env: ALICE_PIN}
    services:
      - dn: "1000"
        cos: {day: 1, night1: 2}
        cor: {day: 1}
"""

IVR = """\
ivr_media_servers:
  - name: ms1
    host: 10.0.0.10
  - name: chat1
    media_type: chat
    host: 10.0.0.11
prompts:
  - name: Welcome
    file: audio/welcome.wav
  - name: Welcome
    language: fr-CA
    file: audio/welcome.wav
subroutines:
  - name: Greet
    steps:
      - action: play
        prompt: Welcome
  - name: ChatGreet
    media_type: chat
    steps:
      - action: hangup
workflows:
  - name: Main
    media_servers: [ms1]
    steps:
      - action: subroutine
        subroutine: Greet
      - action: menu
        prompt: Welcome
        choices:
          "1": "subroutine:Greet"
          "0": "transfer:1000"
"""

BASE: dict[str, str | bytes] = {
    "provgit.yaml": SETTINGS,
    "network.yaml": NETWORK,
    "telephony.yaml": TELEPHONY,
    "ivr.yaml": IVR,
    "audio/welcome.wav": wav(),
}


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")


def validate(root: Path, files: dict[str, str | bytes], base: bool = True) -> Validated:
    """Write the base network plus `files` (which may replace base files) and validate."""
    write(root, {**BASE, **files} if base else files)
    return validate_source(read_directory(root), cache_dir=None)


def summary(diags: list[Diagnostic]) -> list[str]:
    """Each diagnostic as "file:line:col: message", the way the text format starts it."""
    return [f"{d.location}: {d.message}" for d in diags]
