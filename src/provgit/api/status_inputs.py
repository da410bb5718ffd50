"""What `provgit status` derives from: the stored target when the last plan's
inputs are those of the config as it is now, else the config projected.

Apart from `planning` (which loads the element drivers, the observation
reads and asyncio for a plan) so that a status in sync loads none of them.
Internal to the API (`provgit.api`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provgit.incremental import disk as memo
from provgit.incremental.store import TargetStore
from provgit.plan.options import PlanOptions
from provgit.secrets import Fingerprinter, network_key, parse_ref
from provgit.source import ConfigSource

if TYPE_CHECKING:
    from provgit.incremental.memo_summary import MemoSummary
    from provgit.model.state import DesiredState
    from provgit.projection import Target


@dataclass(frozen=True)
class StatusInputs:
    """What `provgit status` derives from when the config changed since the last plan."""

    state: DesiredState | None  # None: the config does not validate
    target: Target | None
    problems: int = 0  # validation problems of the config as it is now
    # Secret values not available here (the PIN environment, a key file,
    # secret_key): None when every one was.
    secrets: SecretsUnavailable | None = None
    # The last plan's memo when its stored target is the config as it is now
    # (provgit.yaml included): its settings' network name and markdown bound
    # are the config's, read without pydantic.
    memo: MemoSummary | None = None


@dataclass(frozen=True)
class SecretsUnavailable:
    """The status was derived where secret values cannot be read, so it checked
    the last plan's inputs by their references alone (`MemoMeta.references`)."""

    unresolved: int  # references that did not resolve here (+1 for secret_key)
    # The config (or provgit) changed since the last plan too: the status shown
    # is the last plan's config's, the change is not derived.
    config_changed: bool


def status_inputs(source: ConfigSource, state_dir: Path, cache_dir: Path | None) -> StatusInputs:
    """The config as it is now, projected, when the target the last plan stored
    is not its projection (no state and `memo` set: the stored one is). A config that does not
    validate gives no state, only its problem count: the last good target
    stands, and the caller says the status is not of the config as it is.

    Without the secret values (another machine reading the shared journal)
    the last plan's digest cannot match: then its reference digest decides.
    Equal: the stored target stands, and the status says a secret changed
    since is not seen. Not equal: nothing is derived from a projection whose
    secrets cannot be compared (that would call a record with a changed PIN
    Sync Completed); the stored target stands and the status says the change
    was not derived."""
    from provgit.validate import validate_source

    store = memo.PlanMemo(state_dir)
    meta = store.load_summary()
    current = False
    secrets: SecretsUnavailable | None = None
    if meta is not None:
        stored = TargetStore(store.target_path).digest()
        secret_key = parse_ref(meta.secret_key) if meta.secret_key is not None else None
        key = network_key(secret_key, state_dir)
        assert key is not None  # made when missing
        # The digest covers --prune; either plan will do.
        either = [PlanOptions(prune=False), PlanOptions(prune=True)]
        digests, unresolved = memo.inputs_digests(
            source, meta.inputs, Fingerprinter(key.secret), either
        )
        current = stored == meta.digest and meta.digest in digests
        missing = len(unresolved) + (key.fallback is not None)
        if missing:
            secrets = SecretsUnavailable(missing, False)
        if not current and missing and stored == meta.digest:
            # A memo without a reference digest (from before it) cannot say
            # either: as if the config changed, until the next plan adds one.
            refs = memo.reference_digests(source, meta.inputs, either) if meta.references else []
            if meta.references not in refs:
                return StatusInputs(None, None, secrets=SecretsUnavailable(missing, True))
            current = True
        if current and not any(e.read_only for e in meta.elements.values()):
            return StatusInputs(None, None, secrets=secrets, memo=meta)
    validated = validate_source(source, cache_dir)
    if not validated.ok:
        errors = sum(1 for d in validated.diagnostics if d.severity == "error")
        return StatusInputs(None, None, errors, secrets)
    state = validated.state
    if current:
        # The stored target stands; the state is for what a read-only element
        # would get (the stored target holds nothing for it).
        return StatusInputs(state, None, secrets=secrets)
    # No memo to stand on (or a stored target not the memo's): the full
    # derivation, where an unresolved secret compares equal; the note says so.
    from provgit.api.network import desired_target

    return StatusInputs(state, desired_target(state, source.read_other, state_dir), secrets=secrets)
