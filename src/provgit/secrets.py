"""Secret references -> values, and keyed fingerprints that stand in for them.

A plan, report, log or note never holds a secret value. Records carry
`{"$sensitive": <fingerprint>, "ref": "env:NAME"}`: the fingerprint (a keyed
HMAC) lets a plan see that a PIN changed without holding it, and apply resolves
the reference right before the element write.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import os
import re
import secrets as _random
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from provgit.environ import environ_view, usable_values
from provgit.fsutil import opened_path as _opened_path
from provgit.fsutil import pseudo_file
from provgit.fsutil import read_state_key as _read_key
from provgit.model.secret_patterns import SECRET_KEY_PATTERN

if TYPE_CHECKING:  # pydantic (~0.15 s to import): only `parse_ref` builds one
    from provgit.model.common import SecretRef

# The marker is the element protocol's (what provgit writes, elements split off),
# re-exported: the pipeline imports it from here.
from provgit.wire.sensitive import PLAIN as PLAIN
from provgit.wire.sensitive import SENSITIVE as SENSITIVE
from provgit.wire.sensitive import SHOWN as SHOWN
from provgit.wire.sensitive import is_sensitive as is_sensitive
from provgit.wire.sensitive import redact as redact

UNRESOLVED = "unresolved"


class SecretUnavailable(Exception):
    """The reference cannot be resolved here (unset variable, unreadable file)."""


# A fleet's network (api/fleet.py): its `{env: NAME}` references resolve through
# the fleet file's mapping for that network, and only through it. The process's
# environment holds the fleet's journal password and every other network's
# secrets, and its files are readable by all: a network's config (written by
# that network's people) must not name them and have them sent to its elements.
_env_overrides: contextvars.ContextVar[Mapping[str, SecretRef] | None] = contextvars.ContextVar(
    "provgit_secret_env", default=None
)


def use_env_overrides(overrides: Mapping[str, SecretRef]) -> None:
    """Here on: `{env: NAME}` means `overrides[NAME]`; a NAME it lacks is not usable."""
    _env_overrides.set(MappingProxyType(dict(overrides)))


class OwnCredential(SecretUnavailable):
    """A reference for an element whose value is one of provgit's own (`_OWN`)."""


class NotInFleetSecrets(SecretUnavailable):
    """A fleet network's config names a secret its `secrets:` does not map."""


def _fleet_ref(ref: SecretRef) -> SecretRef:
    """In a fleet network, the host's reference the fleet file maps `ref` to; else `ref`."""
    overrides = _env_overrides.get()
    if overrides is None:
        return ref
    instead = overrides.get(ref.env) if ref.env is not None else None
    if instead is None:
        raise NotInFleetSecrets(
            f"{ref.describe()} is not among this network's secrets in the fleet file: a "
            "network of a fleet reads only what its own `secrets:` maps (add it there "
            "and write {env: NAME} in the config)"
        )
    return instead


# What provgit authenticates with in this process (resolved not for an element:
# the journal's password, a webhook secret, the secret_key; the watcher's token):
# never sent to an element, as a PIN naming the same variable would hand it over.
_OWN: set[str] = set()
OWN_CREDENTIAL = (
    "holds one of provgit's own credentials here (the journal's password, the watcher's "
    "token or webhook secret, or the secret_key), never sent to an element: give this "
    "field its own secret"
)


def own_credential(value: str | None) -> None:
    """`value` authenticates provgit (the watcher's token): never sent to an element."""
    if value:
        _OWN.add(value)


def resolve(ref: SecretRef, for_element: bool = True) -> str:
    """The secret's value. `for_element`: it is sent to an element (a PIN, a
    token), so a state directory's signing key is refused (only the network's
    `secret_key` may name one), and so is any of provgit's own credentials."""
    value = _resolve(_fleet_ref(ref), for_element)
    if for_element and value in _OWN:
        raise OwnCredential(OWN_CREDENTIAL)
    _OWN.update(() if for_element else (value,))
    return value


def _resolve(ref: SecretRef, for_element: bool) -> str:
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if value is None:
            raise SecretUnavailable(f"environment variable {ref.env} is not set")
        if not value.strip():
            # CI maps a secret nobody configured to "": never write a blank PIN.
            raise SecretUnavailable(f"environment variable {ref.env} is empty")
        return value
    assert ref.file is not None
    if ref.key is not None:
        values, is_state_key = _key_file(ref.file)
        if for_element and is_state_key:
            raise SecretUnavailable(
                f"secret file {ref.file} is a provgit state directory's signing key; "
                "it is never sent to an element"
            )
        value = values.get(ref.key)
        if value is None:
            raise SecretUnavailable(f"secret file {ref.file}: key {ref.key} is not in the file")
        if not value:
            raise SecretUnavailable(f"secret file {ref.file}: key {ref.key} is empty")
        return value
    path = Path(ref.file).expanduser()
    if for_element and state_dir_key(path):
        raise SecretUnavailable(
            f"secret file {ref.file} is a provgit state directory's signing key; "
            "it is never sent to an element"
        )
    _, data, real = _read_regular(ref.file, path, MAX_SECRET_BYTES)
    if for_element and state_dir_key(real):  # linked there since the check above
        raise SecretUnavailable(
            f"secret file {ref.file} is a provgit state directory's signing key; "
            "it is never sent to an element"
        )
    head = data or b""  # the value: line 1
    line, newline, _ = head.partition(b"\n")
    if not newline and len(head) > MAX_SECRET_BYTES:
        raise SecretUnavailable(
            f"secret file {ref.file}: its first line is longer than {MAX_SECRET_BYTES} bytes"
        )
    try:
        value = line.decode("utf-8").strip()
    except UnicodeDecodeError as e:
        # Name the file, never its content.
        raise SecretUnavailable(f"cannot read secret file {ref.file}: {type(e).__name__}") from None
    if not value:
        raise SecretUnavailable(f"cannot read secret file {ref.file}: its first line is empty")
    return value


# What sits beside a state directory's key file (journal, caches, element files).
_STATE_DIR_MARKS = ("journal.sqlite", "cache", "memo", "observed", "elements", "locks")


def state_dir_key(path: Path) -> bool:
    """Whether `path` (after links) is the key file of a provgit state directory."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        return False
    return real.name == KEY_FILE and any((real.parent / m).exists() for m in _STATE_DIR_MARKS)


# A secret's value is a PIN, a token or a key: far below this.
MAX_SECRET_BYTES = 64 * 1024


def _read_regular(
    name: str, path: Path, limit: int, known: tuple[int, int, int] | None = None
) -> tuple[tuple[int, int, int], bytes | None, Path]:
    """A regular file's identity, first `limit` + 1 bytes (None if `known`)
    and where it is (after links, as opened); no content shown."""
    if pseudo_file(path):
        raise SecretUnavailable(f"secret file {name} is not a regular file")
    try:
        # Non-blocking, so a named pipe is refused instead of waited on.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise SecretUnavailable(f"cannot read secret file {name}: {type(e).__name__}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        # Checked again on what was opened: the name may have become a link
        # (to /proc/self/environ, a regular file there) since the check above.
        real = _opened_path(fd, path)
        if not stat.S_ISREG(st.st_mode) or pseudo_file(real):
            raise SecretUnavailable(f"secret file {name} is not a regular file")
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        try:
            return identity, None if identity == known else f.read(limit + 1), real
        except OSError as e:
            raise SecretUnavailable(f"cannot read secret file {name}: {type(e).__name__}") from None


# Key files (`{file: PATH, key: NAME}`) read this run: path -> (when checked,
# the file's identity, its values, whether it is a state directory's key).
# Read once, not once per reference; stat'ed again at most once a second so a
# long-running `watch` sees an edited file.
_KEY_FILES: dict[str, tuple[float, tuple[int, int, int], dict[str, str], bool]] = {}
_RECHECK_AFTER = 1.0  # seconds
# A key file holds many secrets (100,000 PINs are ~2 MB): far below this.
MAX_KEY_FILE_BYTES = 64 * 1024 * 1024


def _key_file(name: str) -> tuple[dict[str, str], bool]:
    """NAME -> value of a key file, and whether it is a state directory's key
    file. `NAME=value` lines; blank lines and lines starting with # are skipped;
    the value is the rest of the line after the first `=`, without surrounding
    whitespace. Read as a single-value secret file is (a regular file only,
    never a pipe or a kernel file). Errors name the file and line, never its content."""
    now = time.monotonic()
    cached = _KEY_FILES.get(name)
    if cached is not None and now - cached[0] < _RECHECK_AFTER:
        return cached[2], cached[3]
    _KEY_FILES.pop(name, None)
    path = Path(name).expanduser()
    identity, data, real = _read_regular(name, path, MAX_KEY_FILE_BYTES, cached and cached[1])
    if data is None:
        assert cached is not None  # unchanged since it was read
        _KEY_FILES[name] = (now, identity, cached[2], cached[3])
        return cached[2], cached[3]
    if len(data) > MAX_KEY_FILE_BYTES:
        raise SecretUnavailable(
            f"secret file {name}: a key file is longer than {MAX_KEY_FILE_BYTES} bytes"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SecretUnavailable(f"cannot read secret file {name}: {type(e).__name__}") from None
    values: dict[str, str] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, eq, value = stripped.partition("=")
        key = key.strip()
        if not eq or re.match(SECRET_KEY_PATTERN, key) is None:
            raise SecretUnavailable(f"secret file {name}: line {number} is not NAME=value")
        if key in values:
            raise SecretUnavailable(f"secret file {name}: line {number} repeats {key}")
        if number == len(lines) and not text.endswith(("\n", "\r")):
            # Read while rewritten in place: "PIN=602" of "PIN=60285741" is no PIN to send.
            raise SecretUnavailable(
                f"secret file {name}: line {number} does not end with a newline (the file "
                "cut off while being written?); end its last line with a newline"
            )
        values[key] = value.strip()
    is_state_key = state_dir_key(real)  # the file read, not what the name says now
    _KEY_FILES[name] = (now, identity, values, is_state_key)
    return values, is_state_key


KEY_FILE = "secret.key"
# Where a network key comes from (plans record it, never the key).
FROM_SECRET_KEY = "secret_key"
FROM_STATE_DIR = "state-dir key"
MIN_SECRET_KEY = 16  # characters


def local_key(state_dir: str | os.PathLike[str]) -> bytes:
    """A random per-state-dir key, made once (0600) when no secret_key is configured."""
    path = Path(state_dir) / KEY_FILE
    found = _read_key(path)
    if found is not None:
        return found
    path.parent.mkdir(parents=True, exist_ok=True)
    key = _random.token_bytes(32)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{_random.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key.hex())
        try:
            # Atomic and refusing to overwrite: two processes making the key at
            # once end up agreeing on the first one.
            os.link(tmp, path)
        except FileExistsError:
            found = _read_key(path)
            if found is not None:
                return found
            os.replace(tmp, path)  # a damaged key file
        except OSError:
            os.replace(tmp, path)  # no hard links on this file system
    finally:
        tmp.unlink(missing_ok=True)
    return key


@dataclass(frozen=True)
class NetworkKey:
    """The key of fingerprints and plan signatures, and where it came from."""

    secret: bytes = field(repr=False)
    source: str  # FROM_SECRET_KEY or FROM_STATE_DIR
    where: str  # the reference ("env:NAME") or the key file's path, never the key
    # Why the configured secret_key was not used (unset here), if it was not.
    fallback: str | None = None


def network_key(
    secret_key: SecretRef | None, state_dir: str | os.PathLike[str], create: bool = True
) -> NetworkKey | None:
    """The configured secret_key when it resolves here, else the state directory's
    key (made when `create`; None when there is none and not `create`)."""
    fallback = None
    if secret_key is not None:
        try:
            value = resolve(secret_key, for_element=False)
        except SecretUnavailable as e:
            fallback = f"secret_key {secret_key.describe()} is not usable here ({e})"
        else:
            # An unset CI secret often arrives as an empty variable: a key anyone
            # could sign plans with. Too short counts as unset.
            if len(value.strip()) >= MIN_SECRET_KEY:
                return NetworkKey(value.encode(), FROM_SECRET_KEY, secret_key.describe())
            fallback = (
                f"secret_key {secret_key.describe()} is not usable here (shorter than "
                f"{MIN_SECRET_KEY} characters; use a long random value)"
            )
    path = Path(state_dir) / KEY_FILE
    key = local_key(state_dir) if create else _read_key(path)
    if key is None:
        return None
    return NetworkKey(key, FROM_STATE_DIR, str(path), fallback)


def parse_ref(described: str) -> SecretRef:
    """The reference `SecretRef.describe()` wrote: env:NAME, file:/path or key:NAME@/path."""
    from provgit.model.common import SecretRef

    kind, _, name = described.partition(":")
    if kind == "key":
        key, _, path = name.partition("@")
        return SecretRef(file=path, key=key)
    return SecretRef(env=name) if kind == "env" else SecretRef(file=name)


class Fingerprinter:
    """Turns secret references into record values, resolving when it may."""

    def __init__(self, key: bytes | None, resolve_values: bool = True) -> None:
        # Without a key (e.g. `diff`, which contacts no element) fingerprints
        # cover the reference, so changing where a secret comes from still shows.
        self.key = key
        self.resolve_values = resolve_values and key is not None
        self.unresolved: list[str] = []
        # Every reference fingerprinted, with its fingerprint (for plan memos).
        self.seen: dict[str, str] = {}
        # Resolved once per run, and so are values digests: a plan after a config
        # change fingerprints every reference for two digests and the projection.
        self._fields: dict[str, dict[str, Any]] = {}
        self._values: dict[tuple[str, ...], tuple[str, list[str]]] = {}

    def share_values(self, digests: dict[tuple[str, ...], tuple[str, list[str]]]) -> None:
        """Keep values digests in `digests`, shared with fingerprinters of the same key."""
        self._values = digests

    def field(self, ref: SecretRef) -> dict[str, Any]:
        described = ref.describe()
        found = self._fields.get(described)
        if found is None:
            found = self._fields[described] = self._field(described, ref)
        self.seen[described] = found[SENSITIVE]
        return dict(found)

    def fingerprint(self, described: str) -> str:
        """`field(parse_ref(described))[SENSITIVE]` without building the
        reference when it is an environment variable (a plan memo's digest
        covers every reference of the network: 20,000 PINs and more)."""
        found = self._fields.get(described)
        if found is None:
            found = self._fields[described] = self._field(described, None)
        fp: str = found[SENSITIVE]
        self.seen[described] = fp
        return fp

    def values_digest(self, described: Sequence[str]) -> tuple[str, list[str]]:
        """One keyed digest of the values of all of `described` (in that order),
        and the references that do not resolve here: what a plan memo's digest
        needs: one HMAC for 100,000 PINs, not one each. Any value changed, set or
        unset changes it; it holds no value. Without a key: the references' digest."""
        if (found := self._values.get(asked := tuple(described))) is None:
            found = self._values[asked] = self._values_digest(asked)
        return found[0], list(found[1])

    def _values_digest(self, described: Sequence[str]) -> tuple[str, list[str]]:
        if not self.resolve_values:
            plain = hashlib.sha256(b"refs")
            for d in described:
                plain.update(b"\0" + d.encode())
            return plain.hexdigest(), []
        assert self.key is not None
        own = _env_overrides.get() is None  # a fleet network's go through `resolve`
        names = [d[4:] if own and d.startswith("env:") and d != "env:" else "" for d in described]
        read = iter(usable_values([n for n in names if n]))  # 20,000 PINs and more: read fast
        unresolved: list[str] = []
        parts: list[bytes] = []
        for d, name in zip(described, names, strict=True):
            value = None if name else self._value(d, None, environ_view())
            data = next(read) if name else None if value is None else value.encode()
            if data is None:
                unresolved.append(d)
                parts.append(b"\0\1" + d.encode())
            else:  # length-prefixed: no two lists of values hash alike
                parts += (b"\0%d:" % len(data), data)
        return hmac.new(self.key, b"values" + b"".join(parts), "sha256").hexdigest(), unresolved

    @staticmethod
    def _value(described: str, ref: SecretRef | None, environ: Mapping[str, str]) -> str | None:
        name = described[4:] if described.startswith("env:") else ""
        try:
            if name and _env_overrides.get() is None:
                # As `resolve` reads a variable, sans pydantic: blank (unset CI secret) is missing.
                value = environ.get(name)
                return value if value and value.strip() else None
            # A fleet network's references go through its mapping (`resolve`).
            return resolve(ref or parse_ref(described))
        except SecretUnavailable:
            return None

    def _field(self, described: str, ref: SecretRef | None) -> dict[str, Any]:
        if not self.resolve_values:
            digest = hashlib.sha256(b"ref:" + described.encode()).hexdigest()[:24]
            return {SENSITIVE: f"ref:{digest}", "ref": described}
        value = self._value(described, ref, os.environ)
        if value is None:
            self.unresolved.append(described)
            return {SENSITIVE: UNRESOLVED, "ref": described}
        assert self.key is not None
        digest = hmac.digest(self.key, value.encode(), "sha256").hex()[:32]
        return {SENSITIVE: digest, "ref": described}


def with_values(fields: dict[str, Any]) -> dict[str, Any]:
    """A copy of a record with every secret reference resolved (for the element write only)."""

    def walk(v: Any) -> Any:
        if is_sensitive(v):
            value = resolve(parse_ref(str(v.get("ref", ""))))
            return {SENSITIVE: v[SENSITIVE], "value": value}
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return {k: walk(v) for k, v in fields.items()}


def scrub(message: str, fields: dict[str, Any] | None) -> str:
    """`message` with the value of every secret of `fields` replaced by `(sensitive)`.

    An element's refusal is stored and shown as the element wrote it, and an
    element may quote what it was sent ("PIN 8642 too simple"): the values
    this record carried must not reach the journal, a report or a log that way.
    """
    if not message or not fields or not any(is_sensitive(v) for v in _leaves(fields)):
        return message
    values: list[str] = []
    for v in _leaves(fields):
        if is_sensitive(v):
            try:
                values.append(resolve(parse_ref(str(v.get("ref", "")))))
            except SecretUnavailable:
                continue
    # Longest first, so a value containing another is hidden whole.
    for value in sorted({v for v in values if v}, key=len, reverse=True):
        message = message.replace(value, "(sensitive)")
    return message


def _leaves(value: Any) -> list[Any]:
    """Every sensitive marker or plain value in a record, depth first."""
    if is_sensitive(value):
        return [value]
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]
