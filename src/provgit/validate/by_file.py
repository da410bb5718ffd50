"""`provgit validate` after a few edited files: each file checked once, users by facts.

A full validation of 100,000 users builds every user's model again (pydantic,
~2/3 of the time) and then runs the rules across users over all of them. With
one file of 2,000 users edited, 98 % of that work repeats what the last run
did. So each file's result is kept, by path and content, in the cache:

- whether the file has any problem of its own (a record failing its own checks,
  a hidden character, a directory name too long): then this path answers
  nothing, and the full validation says exactly what is wrong;
- its users as facts, which is all the rules across users read: login ids (as
  written, case-folded and as they look), directory numbers, and the names,
  numbers and secret references they refer to;
- the rest of its documents (everything but `users`), which are small and are
  built into models again on every run, so every rule about them is the real one.

A run builds the network from those rests, runs every rule on it, and checks
the users against it by their facts: keys, case-folded and look-alike login ids
and DNs unique across all files (set sizes), no login id equal to a DN, every
role, template, department, location, host, class of service and COR group
they name defined, no PIN the secret_key or a token, no secret file inside the
config root or a kernel file. That answers "valid" only. Anything that would
give a finding (or that these facts cannot settle) falls back to the full
validation, reusing the models built here, so every problem is reported by the
same code, with the same words and locations, as without this cache.

The facts are keyed by the code fingerprint (`cache.code_fingerprint`) as the
stored verdict is, so a new rule or model never reads facts an older one made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import marshal
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from provgit.fsutil import read_state_file
from provgit.load.cache import put_raw
from provgit.load.loader import Loaded, LoadedFile, gc_frozen, load_files
from provgit.model.build import FileModels, assemble_state, build_file
from provgit.model.kinds import KINDS
from provgit.model.login import skeleton
from provgit.model.state import DesiredState
from provgit.model.telephony import User
from provgit.source import SETTINGS_FILE, ConfigSource, SourceFile
from provgit.validate import check_network, validate_built
from provgit.validate.cache import Verdict, code_fingerprint
from provgit.validate.rules_base import number_key
from provgit.validate.rules_users import directory_name_too_long, hosting
from provgit.validate.secret_files import config_root, file_problem
from provgit.validate.secret_reuse import guarded_secrets, identity

FORMAT = "facts-1"
_USERS = "users"


@dataclasses.dataclass(frozen=True)
class FileFacts:
    """One file's part in the checks across files (see the module doc)."""

    dirty: bool  # a problem of its own: only the full validation may answer
    rest: list[Any]  # its documents without `users`
    logins: list[str]
    folded: list[str]
    looks: list[str]
    dns: list[str]
    names: dict[str, set[str]]  # kind -> names its users refer to
    cos: set[int]
    cor: set[int]
    envs: set[str]  # secret references {env: NAME}
    files: set[tuple[str, str | None]]  # secret references {file: PATH, key: NAME}

    def dump(self) -> bytes:
        # Not dataclasses.astuple: that deep-copies every list on the way.
        return marshal.dumps((FORMAT, *(getattr(self, f.name) for f in dataclasses.fields(self))))

    @classmethod
    def load(cls, raw: bytes) -> FileFacts | None:
        fields = marshal.loads(raw)
        if not isinstance(fields, tuple) or fields[0] != FORMAT:
            return None
        return cls(*fields[1:])


_REFERRED = ("roles", "templates", "departments", "locations", "hosts")


def facts_of(f: LoadedFile, built: FileModels) -> FileFacts:
    dirty = bool(built.findings) or any(built.partial.values())
    facts = FileFacts(dirty, _rest(f), [], [], [], [], {k: set() for k in _REFERRED}, *_empty())
    key_of = KINDS[_USERS].key
    names = facts.names
    u: User
    for _, u in built.models.get(_USERS, ()):
        login = key_of(u)
        facts.logins.append(login)
        facts.folded.append(login.casefold())
        facts.looks.append(skeleton(login))
        for kind, name in zip(
            _REFERRED, (u.role, u.template, u.department, u.location, u.host), strict=True
        ):
            if name is not None:
                names[kind].add(name)
        if u.voicemail_pin is not None:
            _ref(facts, u.voicemail_pin)
        for s in u.services or ():
            if s is None or s.dn is None:
                dirty = True  # reported by the record's own check
                continue
            facts.dns.append(s.dn)
            for numbers, period in ((facts.cos, s.cos), (facts.cor, s.cor)):
                if period is not None:
                    numbers.update(
                        n for n in (period.day, period.night1, period.night2) if n is not None
                    )
            if s.hot_desk_pin is not None:
                _ref(facts, s.hot_desk_pin)
        if directory_name_too_long(u):
            dirty = True
    return dataclasses.replace(facts, dirty=dirty)


def _empty() -> tuple[set[int], set[int], set[str], set[tuple[str, str | None]]]:
    return set(), set(), set(), set()


def _ref(facts: FileFacts, ref: Any) -> None:
    if ref.env is not None:
        facts.envs.add(ref.env)
    elif ref.file is not None:
        facts.files.add((ref.file, ref.key))


def _rest(f: LoadedFile) -> list[Any]:
    if f.path == SETTINGS_FILE:
        return f.docs
    return [
        {k: v for k, v in d.items() if k != _USERS} if isinstance(d, dict) else d for d in f.docs
    ]


class FactStore:
    def __init__(self, cache_dir: Path) -> None:
        self.directory = cache_dir / FORMAT

    def _path(self, f: SourceFile) -> Path:
        h = hashlib.sha256(f"{code_fingerprint()}\0{f.path}\0{f.blob_id}".encode()).hexdigest()
        return self.directory / h[:2] / f"{h[2:]}.marshal"

    def get(self, f: SourceFile) -> FileFacts | None:
        try:
            return FileFacts.load(read_state_file(self._path(f)))
        except (OSError, EOFError, ValueError, TypeError):
            return None  # missing, corrupt or from another version: not an answer

    def put(self, f: SourceFile, facts: FileFacts) -> None:
        put_raw(self._path(f), facts.dump())


def validate_by_file(source: ConfigSource, cache_dir: Path) -> Verdict:
    """What `validate_source` would answer, from each file's stored facts where
    they settle it (valid), else from the full validation."""
    facts, missing, loaded, built = _facts(source, cache_dir)
    if not loaded.diagnostics:
        quick = _valid(source, facts)
        if quick is not None:
            state, users = quick
            counts = state.counts()
            counts[_USERS] = users
            files = len(source.files)
            return Verdict([], counts, files, loaded.parsed, files - loaded.parsed)
    return _full(source, cache_dir, missing, loaded, built)


def network_if_valid(source: ConfigSource, cache_dir: Path) -> DesiredState | None:
    """The network without its users when the stored facts show the config
    valid with no finding (as `validate_by_file` decides it); None when they do
    not settle it (then only the full validation answers). What a plan after a
    change to shared records projects from: it builds only the users the
    change reaches."""
    facts, _, loaded, _ = _facts(source, cache_dir)
    if loaded.diagnostics:
        return None
    quick = _valid(source, facts)
    return None if quick is None else quick[0]


def _facts(
    source: ConfigSource, cache_dir: Path
) -> tuple[dict[str, FileFacts], dict[str, SourceFile], Loaded, dict[str, FileModels]]:
    """Each file's facts (stored, or made now from the files without them),
    those files, as loaded and as built."""
    store = FactStore(cache_dir)
    facts: dict[str, FileFacts] = {}
    for f in source.files:
        got = store.get(f)
        if got is not None:
            facts[f.path] = got
    missing = {f.path: f for f in source.files if f.path not in facts}
    loaded = load_files(dataclasses.replace(source, files=list(missing.values())), cache_dir)
    with gc_frozen():
        built = {lf.path: build_file(lf) for lf in loaded.files}
    for lf in loaded.files:
        facts[lf.path] = facts_of(lf, built[lf.path])
        store.put(missing[lf.path], facts[lf.path])
    return facts, missing, loaded, built


def _valid(source: ConfigSource, facts: dict[str, FileFacts]) -> tuple[DesiredState, int] | None:
    """The network without users and the number of users, when the facts
    show the config valid; None when they do not."""
    if any(x.dirty for x in facts.values()):
        return None
    rest = [LoadedFile(f.path, f.blob_id, f.data, facts[f.path].rest) for f in source.files]
    with gc_frozen():
        built = [_build_rest(lf) for lf in rest]
    users = list(facts.values())
    state = _network_fits(source, rest, built, users)
    if state is None:
        return None
    return state, sum(len(x.logins) for x in users)


def facts_say_valid(
    source: ConfigSource,
    files: Sequence[LoadedFile],
    built: Sequence[FileModels],
    facts: Sequence[FileFacts],
    unique: bool | None = None,
) -> bool:
    """True when the facts show the config valid with no finding at all, as
    `validate_by_file` decides it, from models already built (the watcher keeps
    every file's models and facts between runs): the network without its users
    gets every rule, the users only the checks on their facts. `unique`: the
    identities' uniqueness when the caller counts it (`fact_index.FactIndex`)."""
    if any(x.dirty for x in facts):
        return False
    rest = [dataclasses.replace(b, models=_no_users(b.models)) for b in built]
    return _network_fits(source, files, rest, facts, unique) is not None


def _no_users(models: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in models.items() if k != _USERS}


def _network_fits(
    source: ConfigSource,
    files: Sequence[LoadedFile],
    rest: Sequence[FileModels],
    users: Sequence[FileFacts],
    unique: bool | None = None,
) -> DesiredState | None:
    """The network without users, if no rule finds anything in it nor in the users' facts."""
    with gc_frozen():
        state, findings = assemble_state(files, rest, commit=source.commit, root=source.root)
    if findings or check_network(state, source, findings):
        return None
    return state if _users_fit(state, source, users, unique) else None


def _build_rest(f: LoadedFile) -> FileModels:
    if f.path != SETTINGS_FILE and all(d is None or d == {} for d in f.docs):
        return FileModels(f.path, None, {}, [])  # what build_file makes of it, faster
    return build_file(f)


def _users_fit(
    state: DesiredState,
    source: ConfigSource,
    users: Sequence[FileFacts],
    unique: bool | None = None,
) -> bool:
    """No rule across users would find anything (`check_users`, the users'
    part of `check_secret_files` and `check_secret_reuse`, `_index`)."""
    total = sum(len(x.logins) for x in users)
    if total == 0:
        return True
    if not (_unique(users, total) if unique is None else unique):
        return False
    elements = state.all_of("elements")
    if not any(e.type in ("micollab", "directory") for e in elements.values()):
        return False  # users live on the MiCollab (check_elements says so)
    named = {kind: set().union(*(x.names[kind] for x in users)) for kind in _REFERRED}
    if not named.pop("hosts") <= hosting(elements):
        return False
    if not all(names <= state.all_of(kind).keys() for kind, names in named.items()):
        return False
    cos = {number_key(k) for k in state.all_of("classes_of_service")}
    cor = {number_key(k) for k in state.all_of("cor_groups")}
    if not set().union(*(x.cos for x in users)) <= cos:
        return False
    if not set().union(*(x.cor for x in users)) <= cor:
        return False
    return _secrets_fit(state, source, users)


def _unique(users: Sequence[FileFacts], total: int) -> bool:
    for column in ("logins", "folded", "looks"):
        if len(set(chain.from_iterable(getattr(x, column) for x in users))) != total:
            return False
    dns = set(chain.from_iterable(x.dns for x in users))
    if len(dns) != sum(len(x.dns) for x in users):
        return False
    # A login id equal to a DN: the rule tells whose.
    return dns.isdisjoint(chain.from_iterable(x.logins for x in users))


def _secrets_fit(state: DesiredState, source: ConfigSource, users: Iterable[FileFacts]) -> bool:
    users = list(users)
    envs: set[str] = set().union(*(x.envs for x in users))
    files: set[tuple[str, str | None]] = set().union(*(x.files for x in users))
    seen: dict[str, Path] = {}
    guarded = guarded_secrets(state, seen)
    if not envs.isdisjoint({g[4:] for g in guarded if g.startswith("env:")}):
        return False
    if any(identity(None, file, key, seen) in guarded for file, key in files):
        return False
    root = config_root(source)
    if root is not None:
        pseudo: dict[str, bool] = {}
        real: dict[str, Path | None] = {}
        if any(file_problem(file, root, pseudo, real) for file in {f for f, _ in files}):
            return False
    return True


def _full(
    source: ConfigSource,
    cache_dir: Path,
    missing: dict[str, SourceFile],
    loaded: Loaded,
    built: dict[str, FileModels],
) -> Verdict:
    """`validate_source`, reusing the files already loaded and built here."""
    others = [f for f in source.files if f.path not in missing]
    more = load_files(dataclasses.replace(source, files=others, errors=[]), cache_dir)
    by_path = {lf.path: lf for lf in chain(loaded.files, more.files)}
    files = [by_path[f.path] for f in source.files if f.path in by_path]
    with gc_frozen():
        for lf in more.files:
            built[lf.path] = build_file(lf)
        full = validate_built(
            source,
            files,
            [built[lf.path] for lf in files],
            [*loaded.diagnostics, *more.diagnostics],
            loaded.parsed + more.parsed,
        )
    return Verdict(full.diagnostics, full.state.counts(), full.files, full.parsed, full.cached)
