"""The config as a plan after a change to shared records reads it, without
building every user's model.

A template edit reaches ~10 % of 100,000 users; building all 100,000 models
(pydantic) to find them was a quarter of that plan. What the plan reads of the
users it does not re-project is small and kept per config file in the owners
memo (`shared.Owners.users`): each user's template, role and host (the
reverse edges of `projection.reach.DependencyIndex`) and the secret
references its projection fingerprints (the memo digest covers them). A file
whose bytes changed since is built again; the reached users are built from
their parsed items (a model is built from its item alone, `model.build`).

`view_of` gives the same view of a fully validated state: both paths then run
the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from provgit.incremental.shared import (
    Defined,
    Owners,
    UserEdge,
    changed_files,
    defines_of,
    item_at,
)
from provgit.load.cache import ParseCache
from provgit.load.loader import LoadedFile
from provgit.model.build import build_file
from provgit.model.kinds import KINDS
from provgit.model.state import DesiredState
from provgit.model.telephony import User
from provgit.projection.reach import DependencyIndex
from provgit.source import ConfigSource

_USERS = "users"


def edges_of(users: Iterable[tuple[str, User]]) -> list[UserEdge]:
    """What the plan reads of each user it does not project (see the module doc)."""
    out: list[UserEdge] = []
    for key, user in users:
        refs = [s.hot_desk_pin.describe() for s in user.services if s.hot_desk_pin]
        if user.voicemail_pin:
            refs.append(user.voicemail_pin.describe())
        out.append((key, user.template, user.role, user.host, refs))
    return out


@dataclass
class SharedView:
    """The config for a plan after a change to shared records: every kind but
    users as models (`network`), every resource's place (`defines`) and each
    file's user edges (`users`); users' models only on request (`state_with`)."""

    network: DesiredState
    defines: dict[str, list[Defined]]
    users: dict[str, list[UserEdge]]
    build: Callable[[set[str]], dict[str, User] | None]

    def index(self) -> DependencyIndex:
        edges = ((k, t, r, h) for file in self.users.values() for k, t, r, h, _ in file)
        return DependencyIndex.of_edges(edges, self.network.of("roles"))

    def secret_refs(self) -> list[str]:
        """Every secret reference a full projection fingerprints (`reach.secret_refs`)."""
        sharing = self.network.settings.sharing.get(_USERS)
        excluded = set(sharing.exclude) if sharing else set()
        refs: dict[str, None] = {}
        for file in self.users.values():
            for key, _, _, _, described in file:
                if key not in excluded:
                    refs.update(dict.fromkeys(described))
        return list(refs)

    def state_with(self, keys: set[str]) -> DesiredState | None:
        """The network with just these users (None: one cannot be built here)."""
        built = self.build(keys)
        if built is None:
            return None
        resources = {k: v for k, v in self.network.resources.items() if k != _USERS}
        resources[_USERS] = built
        return DesiredState(
            self.network.settings,
            resources,
            self.network.origins,
            self.network.sources,
            self.network.commit,
            self.network.root,
        )


def view_of(state: DesiredState) -> SharedView:
    """The view of a fully validated state."""
    users: dict[str, list[UserEdge]] = {}
    for key, user in state.of(_USERS).items():
        users.setdefault(state.origins[(_USERS, key)].file, []).extend(edges_of([(key, user)]))
    everyone = state.of(_USERS)

    def build(keys: set[str]) -> dict[str, User]:
        return {k: u for k, u in everyone.items() if k in keys}

    return SharedView(state, defines_of(state), users, build)


def light_view(
    owners: Owners, network: DesiredState, source: ConfigSource, parsed: ParseCache
) -> SharedView | None:
    """The view from `network` (every kind but users, validated), the owners
    memo for the files unchanged since it was written, and the changed files
    built again. None when a file's parsed documents are not at hand."""
    changed = changed_files(owners, source)
    defines = {
        path: [d for d in found if d[0] != _USERS] for path, found in defines_of(network).items()
    }
    users: dict[str, list[UserEdge]] = {}
    models: dict[str, User] = {}  # the changed files' users, built
    for f in source.files:
        if f.path not in changed:
            defines.setdefault(f.path, []).extend(
                d for d in owners.defines.get(f.path, ()) if d[0] == _USERS
            )
            if f.path in owners.users:
                users[f.path] = owners.users[f.path]
            continue
        docs = parsed.get(f.blob_id)
        if docs is None:
            return None
        mine = build_file(LoadedFile(f.path, f.blob_id, f.data, docs)).models.get(_USERS, [])
        key_of = KINDS[_USERS].key
        keyed = [(key_of(u), p, u) for p, u in mine]
        defines.setdefault(f.path, []).extend((_USERS, k, tuple(p.path)) for k, p, _ in keyed)
        users[f.path] = edges_of((k, u) for k, _, u in keyed)
        models.update({k: u for k, _, u in keyed})
    order = {f.path: i for i, f in enumerate(source.files)}
    blobs = {f.path: f.blob_id for f in source.files}

    def build(keys: set[str]) -> dict[str, User] | None:
        at = [
            (order[path], where, key)
            for path, found in defines.items()
            for kind, key, where in found
            if kind == _USERS and key in keys
        ]
        at.sort(key=lambda t: (t[0], _sortable(t[1])))
        items: list[Any] = []
        want: list[str] = []
        docs: dict[int, list[Any] | None] = {}  # each file's documents read once
        for i, where, key in at:
            if key in models:
                continue
            if i not in docs:
                docs[i] = parsed.get(blobs[source.files[i].path])
            item = item_at(docs[i], where)
            if item is None:
                return None
            items.append(item)
            want.append(key)
        built = dict(zip(want, KINDS[_USERS].adapter().validate_python(items), strict=True))
        return {key: models[key] if key in models else built[key] for _, _, key in at}

    return SharedView(network, defines, users, build)


def _sortable(where: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((0, x) if isinstance(x, int) else (1, str(x)) for x in where)
