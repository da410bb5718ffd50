"""Secret files must lie outside the config root.

A `{file: PATH}` reference inside the config repository would be committed
with it (and pushed, and copied into every clone): the secret would not be one.
Which directory is the config root is known only here, where the source is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from provgit.fsutil import pseudo_file
from provgit.load.yaml_events import Path as DataPath
from provgit.model.common import SecretRef
from provgit.model.findings import Finding, Pointer
from provgit.model.state import DesiredState
from provgit.source import SETTINGS_FILE, ConfigSource


def check_secret_files(state: DesiredState, source: ConfigSource) -> list[Finding]:
    root = config_root(source)
    if root is None:
        return []
    out: list[Finding] = []
    # Each file looked at once: 100,000 PINs may name one key file.
    pseudo: dict[str, bool] = {}
    real: dict[str, Path | None] = {}
    for at, kind, key, ref in _file_refs(state):
        assert ref.file is not None
        problem = file_problem(ref.file, root, pseudo, real)
        if problem == "pseudo":
            out.append(
                Finding(
                    at,
                    f"secret file {ref.file} is not a regular file (a kernel or device file: "
                    "what it reads is no stored secret, and may be every variable of the job)",
                    kind=kind,
                    key=key,
                    hint="put the value in a file of its own (e.g. /etc/provgit/NAME) "
                    "or use {env: VARIABLE}",
                    code="secret",
                )
            )
            continue
        if problem == "inside":
            out.append(
                Finding(
                    at,
                    f"secret file {ref.file} is inside the config root ({root}): it would be "
                    "committed with the config, so it is not secret",
                    kind=kind,
                    key=key,
                    hint="move the file outside the config repository (e.g. /etc/provgit/) "
                    "or use {env: VARIABLE}",
                    code="secret",
                )
            )
    return out


def config_root(source: ConfigSource) -> Path | None:
    """The folder secret files must lie outside of (None: no such check here)."""
    return None if source.disk_root is None else _real(Path(source.disk_root))


def file_problem(
    file: str, root: Path, pseudo: dict[str, bool], real: dict[str, Path | None]
) -> Literal["pseudo", "inside"] | None:
    """What is wrong with a secret file `file` (`pseudo`, `real`: looked up
    once per check, as 100,000 PINs may name one key file)."""
    if file not in pseudo:
        pseudo[file] = pseudo_file(Path(file).expanduser())
    if pseudo[file]:
        return "pseudo"
    if file not in real:
        real[file] = _real(Path(file).expanduser())
    target = real[file]
    return "inside" if target is not None and target.is_relative_to(root) else None


def _real(p: Path) -> Path | None:
    try:
        return p.resolve()
    except (OSError, RuntimeError):  # a symlink loop: reading it fails later, clearly
        return None


def _file_refs(state: DesiredState) -> Iterator[tuple[Pointer, str | None, str | None, SecretRef]]:
    """Every `{file: ...}` secret reference, with where it is written."""
    key_ref = state.settings.secret_key
    if key_ref is not None and key_ref.file is not None:
        yield Pointer(SETTINGS_FILE, (0, "secret_key")), None, None, key_ref
    for name, element in state.elements.items():
        token = element.connection.token
        if token is not None and token.file is not None:
            yield _at(state, "elements", name, ("connection", "token")), "elements", name, token
    for login, user in state.of("users").items():
        pin = user.voicemail_pin
        if pin is not None and pin.file is not None:
            yield _at(state, "users", login, ("voicemail_pin",)), "users", login, pin
        for i, service in enumerate(user.services):
            desk = service.hot_desk_pin
            if desk is not None and desk.file is not None:
                yield (
                    _at(state, "users", login, ("services", i, "hot_desk_pin")),
                    "users",
                    login,
                    desk,
                )


def _at(state: DesiredState, kind: str, key: str, path: DataPath) -> Pointer:
    origin = state.origins.get((kind, key), Pointer("", ()))
    return Pointer(origin.file, origin.path + path)
