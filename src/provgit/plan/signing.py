"""Signed plans: whoever can write a saved plan must not be able to change what it applies.

`provgit plan --out` writes the plan's JSON with a `signature`: HMAC-SHA256,
keyed by the network's `secret_key` (or, without one, the state directory's
key), over the canonical serialization (`model.canonical`) of the whole
document but the signature's value. The file is that canonical form itself
(serialized once, with orjson; the value spliced into the signature), so the
bytes signed are the bytes written. `apply` parses the file once, serializes
what it parsed the same way and checks the HMAC (`hmac.compare_digest`) before
anything else: so what was checked is exactly what is applied, byte for byte.
The plan names which key signed it (where it came from and a key id derived
from it), never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterator
from itertools import chain
from typing import Any

import orjson

from provgit.model.common import SecretRef
from provgit.plan.model import (
    FORMAT,
    READABLE_FORMATS,
    UNSIGNED_FORMATS,
    Plan,
    PlanFormatError,
    canonical,
    join_sorted,
    legacy_canonical,
)
from provgit.secrets import FROM_SECRET_KEY, FROM_STATE_DIR, NetworkKey, network_key

ALGORITHM = "HMAC-SHA256"
SIGNATURE = "signature"
RUN_AGAIN = "run `provgit plan --out FILE` again"
# Domain separation: the network key also keys secret fingerprints.
_SIGNING = b"provgit plan signature v1"
_KEY_ID = b"provgit plan key id v1"


class PlanSignatureError(PlanFormatError):
    """A plan that is not signed, or whose signature does not hold: refused for safety."""


def key_id(key: NetworkKey) -> str:
    """A name for the key that reveals nothing of it."""
    return hmac.new(key.secret, _KEY_ID, hashlib.sha256).hexdigest()[:16]


def _hmac(key: NetworkKey) -> hmac.HMAC:
    signing_key = hmac.new(key.secret, _SIGNING, hashlib.sha256).digest()
    return hmac.new(signing_key, None, hashlib.sha256)


def _mac(key: NetworkKey, message: bytes) -> str:
    mac = _hmac(key)
    mac.update(message)
    return mac.hexdigest()


def plan_key(
    secret_key: SecretRef | None, state_dir: str | os.PathLike[str], create: bool = True
) -> NetworkKey | str:
    """The key plans are signed and checked with (the fingerprints' key); or,
    when there is none here and `create` is off, why not."""
    found = network_key(secret_key, state_dir, create)
    if found is not None:
        return found
    if secret_key is not None:
        configured = f"the network's secret_key ({secret_key.describe()}) is not set here"
    else:
        configured = "provgit.yaml sets no secret_key"
    return f"{configured} and the state directory {state_dir} has no key"


def signed_document(plan: Plan, key: NetworkKey) -> dict[str, Any]:
    doc = plan.to_json()
    doc[SIGNATURE] = {"algorithm": ALGORITHM, "key": key.source, "key_id": key_id(key)}
    doc[SIGNATURE]["value"] = _mac(key, canonical(doc))
    return doc


def signed_bytes(plan: Plan, key: NetworkKey) -> Iterator[bytes]:
    """The saved form of a plan (what `provgit apply PLAN_FILE` accepts), in
    pieces to write in order as they are made: `canonical` of the signed
    document, each value serialized once and the HMAC taken over those same
    bytes as they pass. The signature sorts after the elements, so only the
    few small values after it wait for it."""
    header = canonical({"algorithm": ALGORITHM, "key": key.source, "key_id": key_id(key)})
    parts = plan.canonical_parts()
    parts[SIGNATURE] = (header,)
    keys = sorted(parts)
    at = keys.index(SIGNATURE)
    mac = _hmac(key)
    for i, k in enumerate(keys[:at]):
        for piece in chain(((b"," if i else b"{") + orjson.dumps(k) + b":",), parts[k]):
            mac.update(piece)
            yield piece
    key_piece = (b"," if at else b"{") + orjson.dumps(SIGNATURE) + b":"
    # What sorts after the signature: a few small values (source, totals, ...).
    tail = b"".join(join_sorted({k: parts[k] for k in keys[at + 1 :]}))[1:]
    tail = (b"," + tail) if tail != b"}" else tail
    for piece in (key_piece, header, tail):
        mac.update(piece)
    # `canonical` of the header with "value" added: sorted last, so it goes
    # just before the header's closing brace.
    yield key_piece + header[:-1] + b',"value":' + orjson.dumps(mac.hexdigest()) + b"}"
    yield tail
    yield b"\n"


def signed_text(plan: Plan, key: NetworkKey) -> str:
    """`signed_bytes` as one string."""
    return b"".join(signed_bytes(plan, key)).decode()


def _described(signature: dict[str, Any]) -> str:
    """Which key the plan says signed it, shown only when it is well formed
    (the file is not trusted yet: nothing of it is echoed otherwise)."""
    source, kid = signature.get("key"), signature.get("key_id")
    well_formed = isinstance(kid, str) and re.fullmatch(r"[0-9a-f]{16}", kid) is not None
    if source in (FROM_SECRET_KEY, FROM_STATE_DIR) and well_formed:
        return f"{source} {kid}"
    return "an unknown key"


def _raw_value(data: bytes, key: NetworkKey) -> str | None:
    """The signature's value when it holds over the file's own bytes (the
    canonical form `signed_bytes` writes, less that value): checked on the
    bytes as read, streaming, without parsing or re-serializing anything.
    None when it does not (another key, an edited or non-canonical file):
    `verify` then checks the parsed document's canonical form as before."""
    at = data.rfind(b',"value":"')
    end = at + len(b',"value":"') + 64
    given = data[end - 64 : end]
    if at < 0 or data[end : end + 2] != b'"}' or re.fullmatch(rb"[0-9a-f]{64}", given) is None:
        return None
    mac = _hmac(key)
    view = memoryview(data)
    mac.update(view[:at])
    # The newline `signed_bytes` ends the file with is not signed.
    mac.update(view[end + 1 : len(data) - 1 if data.endswith(b"\n") else len(data)])
    view.release()
    return given.decode() if hmac.compare_digest(mac.hexdigest().encode(), given) else None


def _document(data: bytes | str) -> dict[str, Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise PlanFormatError(f"plan file is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise PlanFormatError(f"not a provgit plan (expected format {FORMAT!r})")
    return doc


def _check_format(doc: dict[str, Any]) -> None:
    found = doc.get("format")
    if found in UNSIGNED_FORMATS:
        raise PlanSignatureError(
            f"this plan is in an old, unsigned format ({found}) and is not applied: "
            f"plans are signed now; {RUN_AGAIN}"
        )
    if found not in READABLE_FORMATS:
        raise PlanFormatError(f"not a provgit plan (expected format {FORMAT!r})")


def verify(text: bytes | str, key: NetworkKey | str) -> Plan:
    """The plan in `text` (the file's bytes, as read once) if its signature
    holds under `key`.

    Raises PlanSignatureError (refused for safety) when it is unsigned, in a
    format from before plans were signed, or signed otherwise; PlanFormatError
    when it is not a plan at all.
    """
    doc = _document(text)
    check(text, doc, key)
    del doc[SIGNATURE]
    return Plan.from_json(doc)


def check(text: bytes | str, doc: dict[str, Any], key: NetworkKey | str) -> None:
    """Raise PlanSignatureError unless the signature of `doc`, parsed from
    `text` (read once), holds under `key`."""
    # The signature over the bytes themselves first (what `plan --out`
    # writes): if it holds, these bytes are what was signed, less the value,
    # and they are what was parsed: nothing is re-serialized to check it.
    _check_format(doc)
    signature = doc.get(SIGNATURE)
    value = signature.get("value") if isinstance(signature, dict) else None
    if not isinstance(signature, dict) or not isinstance(value, str):
        raise PlanSignatureError(
            f"the plan is not signed (was its signature removed?) and is not applied; {RUN_AGAIN}"
        )
    if signature.get("algorithm") != ALGORITHM:
        raise PlanSignatureError(
            f"the plan's signature is not {ALGORITHM} and is not applied; {RUN_AGAIN}"
        )
    signed_with = _described(signature)
    if isinstance(key, str):
        raise PlanSignatureError(
            f"plan signature cannot be checked: it names {signed_with}, but {key}; set the "
            "network's secret_key (e.g. PROVGIT_SECRET_KEY) in both the plan and the apply "
            "job, or apply with the state directory the plan was made with"
        )
    raw = _raw_value(text, key) if isinstance(text, bytes) else None
    if raw is None or raw != value:
        _check_parsed(doc, signature, value, key, signed_with)


def _check_parsed(
    doc: dict[str, Any], signature: dict[str, Any], value: str, key: NetworkKey, signed_with: str
) -> None:
    """The signature over the canonical form of the parsed document (a file
    not byte for byte as `plan --out` wrote it, or one that does not hold)."""
    unsigned = dict(doc)
    unsigned[SIGNATURE] = {k: v for k, v in signature.items() if k != "value"}
    given = value.encode("utf-8", "replace")
    held = hmac.compare_digest(_mac(key, canonical(unsigned)).encode(), given)
    if not held:
        # Saved by a provgit from before orjson (ASCII escapes in the signed form).
        held = hmac.compare_digest(_mac(key, legacy_canonical(unsigned)).encode(), given)
    if not held:
        here = f"{key.source} {key_id(key)}"
        if signed_with == here:
            why = f" (it names the key used here, {here}: so its content changed since)"
        else:
            why = f" (it names {signed_with}; the key here is {here}"
            why += f", as {key.fallback})" if key.fallback else ")"
        raise PlanSignatureError(
            "plan signature does not match: the plan was changed after it was made, or was "
            f"made with another key; run provgit plan again{why}"
        )
