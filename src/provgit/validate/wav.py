"""Prompt audio: a WAV file the IVR routing servers will play.

The IVR servers play 8 kHz mono telephone audio: 16-bit PCM, or 8-bit
G.711 (mu-law or A-law). The file is parsed chunk by chunk, so a valid header
in front of a junk or truncated body is refused, not shipped.
"""

from __future__ import annotations

import struct

RATE = 8000
CHANNELS = 1
# WAVE format tag -> (name, accepted sample width in bits)
ENCODINGS = {1: ("PCM", 16), 6: ("A-law", 8), 7: ("mu-law", 8)}
_EXTENSIBLE = 0xFFFE
_CONVERT = "convert it, e.g. sox in.wav -r 8000 -c 1 -b 16 -e signed-integer out.wav"


def audio_problem(
    file: str, data: bytes | None, oversize: int | None = None, limit: int = 0
) -> tuple[str, str] | None:
    """(message, hint) when the prompt's audio is unusable, else None.
    `oversize`: the file was not read, being `oversize` bytes, over `limit`."""
    if oversize is not None:
        return (
            f"audio file '{file}' is {oversize / 1e6:,.1f} MB, over the "
            f"{limit // 2**20} MiB limit for a file the config names; not read",
            "a telephone prompt (8 kHz mono) is about 1 MB a minute: trim it, split it "
            "into several prompts, or check the path names the file meant",
        )
    if data is None:
        return (
            f"audio file '{file}' not found in the config root",
            "add the WAV file at that path (a symlink out of the config root counts as missing)",
        )
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return (
            f"audio file '{file}' is not a WAV file (no RIFF/WAVE header)",
            "convert it to WAV, e.g. sox in.mp3 -r 8000 -c 1 out.wav "
            "or ffmpeg -i in.mp3 -ar 8000 -ac 1 out.wav",
        )
    problem = _wav_problem(data)
    return None if problem is None else (f"audio file '{file}' {problem[0]}", problem[1])


def _wav_problem(data: bytes) -> tuple[str, str] | None:
    broken = "re-export or re-record the file; it is damaged or not a plain WAV file"
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if riff_size + 8 != len(data) and riff_size + 9 != len(data):
        return (
            f"is damaged: its RIFF header says {riff_size + 8} bytes, the file has {len(data)}",
            broken,
        )
    chunks: dict[bytes, tuple[int, int]] = {}  # id -> (offset of body, size)
    pos = 12
    while pos < len(data):
        if pos + 8 > len(data):
            return f"is damaged: {len(data) - pos} stray byte(s) at the end", broken
        cid = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        if pos + 8 + size > len(data):
            name = cid.decode("latin-1")
            return (
                f"is truncated: chunk {name!r} at byte {pos} claims {size} bytes, "
                f"{len(data) - pos - 8} are there",
                broken,
            )
        chunks.setdefault(cid, (pos + 8, size))
        pos += 8 + size + (size & 1)
    if b"fmt " not in chunks:
        return "has no 'fmt ' chunk (the audio format is unknown)", broken
    if b"data" not in chunks:
        return "has no 'data' chunk (no audio)", broken
    if chunks[b"fmt "][0] > chunks[b"data"][0]:
        return "has its 'data' chunk before its 'fmt ' chunk", broken
    fpos, fsize = chunks[b"fmt "]
    if fsize < 16:
        return f"has a 'fmt ' chunk of {fsize} bytes (at least 16 expected)", broken
    tag, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", data, fpos)
    if tag == _EXTENSIBLE and fsize >= 40:
        (tag,) = struct.unpack_from("<H", data, fpos + 24)
    if align != channels * bits // 8 or byte_rate != rate * align or align == 0:
        return (
            f"has an inconsistent format ({channels} channel(s), {bits} bits, "
            f"block size {align}, {byte_rate} bytes/s at {rate} Hz)",
            broken,
        )
    _, dsize = chunks[b"data"]
    if dsize == 0:
        return "has no audio (its 'data' chunk is empty)", "record the prompt again"
    if dsize % align:
        return f"has a 'data' chunk of {dsize} bytes, not whole {align}-byte frames", broken
    found = f"{rate} Hz, {channels} channel(s), {bits}-bit {ENCODINGS.get(tag, ('',))[0]}".strip()
    enc = ENCODINGS.get(tag)
    if enc is None:
        return (
            f"is encoded as WAVE format {tag:#06x}; the IVR servers play 16-bit PCM, "
            "mu-law or A-law",
            _CONVERT,
        )
    if rate != RATE or channels != CHANNELS or bits != enc[1]:
        return (
            f"is {found}; the IVR servers play {RATE} Hz mono (16-bit PCM, or 8-bit mu-law/A-law)",
            _CONVERT,
        )
    return None
