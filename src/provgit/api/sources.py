"""Finding a config on disk and its state directory. Internal to the API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from provgit import secrets
from provgit.api.errors import ConfigNotFound
from provgit.fsutil import check_default_state_dir
from provgit.journal import location as journal_location
from provgit.source import SETTINGS_FILE, ConfigSource, read_config_file, read_directory

if TYPE_CHECKING:  # pydantic, ruamel: a status in sync parses no settings
    from provgit.model.settings import Settings


def default_state_dir(root: Path, state_dir: Path | str | None = None) -> Path:
    """Where provgit keeps its state: `state_dir`, $PROVGIT_STATE_DIR, or ROOT/.provgit.

    The journal goes with the state: ROOT/provgit.yaml's `journal:` is taken
    up here (every command finds its state through this function)."""
    use_journal_settings(root)
    chosen = state_dir or os.environ.get("PROVGIT_STATE_DIR")
    if chosen:
        return Path(chosen)  # the operator's choice: a link there is theirs
    default = root / ".provgit"
    check_default_state_dir(default)
    return default


def use_journal_settings(root: Path) -> None:
    """Select the journal provgit.yaml names in `journal:` (none: the state
    directory's file). --journal-url and $PROVGIT_JOURNAL_URL still win."""
    try:
        text = read_config_file(root / SETTINGS_FILE)
    except OSError:
        text = b""
    # Most configs have no `journal:`: spare them a second parse of provgit.yaml.
    settings = read_settings(root) if b"journal" in text else None
    if settings is None or settings.journal.url is None:
        # journal.pool_size still bounds the pool of a --journal-url journal.
        journal_location.configure(None, pool_size=settings.journal.pool_size if settings else None)
        # Before any file is touched: --network's journal is not this directory's.
        journal_location.journal_location()
        return
    password, problem = None, None
    ref = settings.journal.password
    if ref is not None:
        try:
            password = secrets.resolve(ref, for_element=False)
        except secrets.SecretUnavailable as e:
            problem = f"journal.password {ref.describe()} is not usable here ({e})"
    journal_location.configure(settings.journal.url, password, problem, settings.journal.pool_size)


def settings_missing_message(path: Path) -> str:
    looked = path / SETTINGS_FILE
    near = sorted(
        p.name
        for p in (path.iterdir() if path.is_dir() else ())
        if p.name.lower() in ("provgit.yaml", "provgit.yml") and p.name != SETTINGS_FILE
    )
    how = (
        f"rename {near[0]} to {SETTINGS_FILE}"
        if near
        else "create it with at least 'version: 1' and 'network: NAME' "
        "(see sample-config/provgit.yaml)"
    )
    return (
        f"no {SETTINGS_FILE} in {str(path)!r} (looked for {str(looked)!r}): "
        f"is this the config directory? A config has {SETTINGS_FILE} at its root; {how}"
    )


def read_config_directory(path: Path) -> ConfigSource:
    """The config files under `path`; `ConfigNotFound` when it is not a config directory."""
    if not path.exists():
        raise ConfigNotFound(f"config directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise ConfigNotFound(f"{str(path)!r} is not a directory")
    settings = path / SETTINGS_FILE
    # A symlinked one is judged by the source (outside the root, broken, a loop).
    if not (settings.is_file() or settings.is_symlink()):
        # Checked before reading anything or creating any state: a wrong folder
        # (e.g. people/) gets one clear sentence, not an error per record.
        raise ConfigNotFound(settings_missing_message(path))
    source = read_directory(path)
    if not source.files and not source.errors:
        # An empty network is valid, but here it is nearly always the wrong folder.
        raise ConfigNotFound(
            f"no *.yaml files under {str(path)!r}: is this the config directory? "
            "(a config has provgit.yaml at its root; see sample-config/)"
        )
    return source


def read_settings(path: Path) -> Settings | None:
    """PATH/provgit.yaml alone, or None when it is missing or invalid (for
    answers that must not need the whole config to be valid)."""
    from provgit.load.yaml_events import YamlProblem, parse_documents
    from provgit.model.settings import Settings

    try:
        docs = parse_documents(read_config_file(path / SETTINGS_FILE))
        return Settings.model_validate(docs[0] if docs else {})
    except (OSError, YamlProblem, ValueError):
        return None
