"""A secret that keys provgit or opens an element is never also written as a PIN.

The network's `secret_key` signs plans and an element's `token` is its API
credential. A user's PIN is written to an element, where its admins and its
database can read it: a PIN reference naming the key (or a token) would hand
whoever reads PINs there the power to sign plans (or to act as provgit on
another element). In a review `{env: PROVGIT_SECRET_KEY}` looks like any other
reference, so it is refused here, wherever it is used again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from provgit.load.yaml_events import Path as DataPath
from provgit.model.common import SecretRef
from provgit.model.findings import Finding, Pointer
from provgit.model.state import DesiredState
from provgit.source import SETTINGS_FILE


def guarded_secrets(state: DesiredState, seen: dict[str, Path]) -> dict[str, str]:
    """The identity of every secret no PIN may be (the key, the tokens) -> what it is."""
    key = state.settings.secret_key
    guarded: dict[str, str] = {}
    if key is not None:
        guarded[_identity(key, seen)] = "the network's secret_key (it signs plans)"
    for name, element in state.elements.items():
        token = element.connection.token
        if token is not None:
            guarded.setdefault(_identity(token, seen), f"element {name}'s connection token")
    return guarded


def check_secret_reuse(state: DesiredState) -> list[Finding]:
    seen: dict[str, Path] = {}
    guarded = guarded_secrets(state, seen)
    if not guarded:
        return []
    out: list[Finding] = []
    for at, kind, key_name, ref, is_token in _uses(state):
        what = guarded.get(_identity(ref, seen))
        # Tokens may be shared between elements; the key may be used nowhere else.
        if what is None or (is_token and not what.startswith("the network's")):
            continue
        out.append(
            Finding(
                at,
                f"secret reference {ref.describe()} is {what}: it would be sent to an element "
                "as this value, where the element's admins can read it",
                kind=kind,
                key=key_name,
                hint="give this field its own secret (another variable or file)",
                code="secret",
            )
        )
    return out


def _identity(ref: SecretRef, seen: dict[str, Path]) -> str:
    return identity(ref.env, ref.file, ref.key, seen)


def identity(env: str | None, file: str | None, key: str | None, seen: dict[str, Path]) -> str:
    """Two references to the same secret compare equal (a file through any link)."""
    if env is not None:
        return f"env:{env}"
    assert file is not None
    # A key file holds many secrets: the same file with another key is another secret.
    keyed = f"#key:{key}" if key is not None else ""
    return f"file:{_real(file, seen)}{keyed}"


def _real(file: str, seen: dict[str, Path]) -> Path:
    """The file a reference names, resolved once per check (100,000 PINs may
    share one key file); not across checks, so a moved link is seen."""
    found = seen.get(file)
    if found is None:
        found = Path(file).expanduser()
        # A loop: reading it fails later, clearly.
        with contextlib.suppress(OSError, RuntimeError):
            found = found.resolve()
        seen[file] = found
    return found


def _uses(state: DesiredState) -> Iterator[tuple[Pointer, str | None, str | None, SecretRef, bool]]:
    """Every secret reference but the secret_key itself, with where it is written."""
    for name, element in state.elements.items():
        token = element.connection.token
        if token is not None:
            yield (
                _at(state, "elements", name, ("connection", "token")),
                "elements",
                name,
                token,
                True,
            )
    for login, user in state.of("users").items():
        pin = user.voicemail_pin
        if pin is not None:
            yield _at(state, "users", login, ("voicemail_pin",)), "users", login, pin, False
        for i, service in enumerate(user.services):
            desk = service.hot_desk_pin
            if desk is not None:
                at = _at(state, "users", login, ("services", i, "hot_desk_pin"))
                yield at, "users", login, desk, False


def _at(state: DesiredState, kind: str, key: str, path: DataPath) -> Pointer:
    origin = state.origins.get((kind, key), Pointer(SETTINGS_FILE, ()))
    return Pointer(origin.file, origin.path + path)
