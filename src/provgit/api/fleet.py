"""Fleets: one process serving many networks (issue #19).

A fleet file names the networks (each a git repository, its ref, the config
directory inside it and, optionally, what its `{env: NAME}` secrets resolve to
on this host) and the PostgreSQL journal the fleet's replicas share. It is
checked against `schemas/fleet.schema.json`, then for what a schema cannot say
(unique names); every problem is reported with file:line:col, and a file with
any problem is not used at all.

Each network's journal lives in a PostgreSQL schema of its own
(`network_schema`): the network's watcher sets its connection's search_path to
it, so its rows can never mix with another network's, and `provgit status
--network NAME` reads one network from any machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from provgit import secrets
from provgit.fsutil import check_default_state_dir
from provgit.journal.location import (
    JournalLocation,
    for_network,
    network_schema,
    use_scoped,
)
from provgit.load.yaml_events import YamlProblem, parse_documents
from provgit.load.yaml_locate import locate
from provgit.model.common import SecretRef
from provgit.schema import FLEET_FILE, shipped_schema_text

__all__ = [
    "DEFAULT_FLEET_LEASE_SECONDS",
    "Fleet",
    "FleetFileError",
    "FleetNetwork",
    "enter_network",
    "network_schema",
    "read_fleet",
]

DEFAULT_FLEET_LEASE_SECONDS = 15.0


@dataclass(frozen=True)
class FleetNetwork:
    name: str
    repo: str
    ref: str = "main"
    path: str = "."
    drift: str | None = None
    # NAME of the network's {env: NAME} references -> where the value is on this host.
    secrets: Mapping[str, SecretRef] = field(default_factory=dict)
    # Where the git host's webhook secret is (the network's own, else the fleet's).
    webhook_secret: SecretRef | None = None


@dataclass(frozen=True)
class Fleet:
    file: Path
    journal: JournalLocation
    lease_seconds: float
    state_dir: Path
    networks: tuple[FleetNetwork, ...]

    def network(self, name: str) -> FleetNetwork:
        return next(n for n in self.networks if n.name == name)

    def location(self, name: str) -> JournalLocation:
        """The journal of network `name` (its own schema of the fleet's database)."""
        return for_network(self.journal, name)


class FleetFileError(Exception):
    """A fleet file that cannot be used: every problem, `file:line:col: what (how to fix)`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_HINTS = {
    "required": "add it",
    "additionalProperties": "remove it, or check its spelling",
    "oneOf": "write {env: VARIABLE} or {file: /path/outside/any/repo}",
    "const": "write version: 1",
}


def _schema_problems(file: str, data: bytes, doc: Any) -> list[str]:
    schema = json.loads(shipped_schema_text(FLEET_FILE))
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(doc),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    paths = [(0, *e.absolute_path, *_unexpected(e)) for e in errors]
    where = locate(data, paths) if errors else {}
    problems = []
    for e, p in zip(errors, paths, strict=True):
        line, col = where.get(p, (1, 1))
        at = "/".join(map(str, e.absolute_path)) or "(top level)"
        message = e.message
        hint = _HINTS.get(str(e.validator))
        if e.validator == "pattern" and at.endswith("/name"):
            message = f"network name {e.instance!r} is not usable"
            hint = "use lower-case letters, digits and '-', at most 51, e.g. east-1"
        elif e.validator == "pattern" and at.endswith(("/repo", "/ref")):
            hint = "a leading '-' would be read by git as an option"
        elif e.validator == "minimum" and at.endswith("pool_size"):
            hint = "2 go to the leases, 1 listens for relayed webhooks, the rest to the journals"
        elif e.validator == "oneOf":
            message = "a secret must be a reference, not a value"
        problems.append(f"{file}:{line}:{col}: {at}: {message}" + (f" ({hint})" if hint else ""))
    return problems


def _unexpected(e: jsonschema.ValidationError) -> tuple[str, ...]:
    """An unexpected key: pointed at itself, not at the mapping holding it."""
    if e.validator != "additionalProperties" or not isinstance(e.instance, dict):
        return ()
    known = e.schema.get("properties", {}) if isinstance(e.schema, dict) else {}
    extra = [k for k in e.instance if k not in known]
    return (str(extra[0]),) if extra else ()


def _duplicates(file: str, data: bytes, doc: dict[str, Any]) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for i, n in enumerate(doc["networks"]):
        first = seen.setdefault(n["name"], i)
        if first != i:
            line, col = locate(data, [(0, "networks", i, "name")]).get(
                (0, "networks", i, "name"), (1, 1)
            )
            problems.append(
                f"{file}:{line}:{col}: networks/{i}/name: network {n['name']!r} is named twice "
                f"(also networks/{first}): give each network its own name"
            )
    return problems


def _secret(ref: Mapping[str, Any]) -> SecretRef:
    return SecretRef.model_validate(dict(ref))


def read_fleet(path: Path) -> Fleet:
    """The fleet file at `path`, checked; FleetFileError with every problem."""
    file = str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FleetFileError([f"{file}: cannot read it: {e.strerror or e}"]) from None
    try:
        docs = parse_documents(data)
    except YamlProblem as e:
        hint = f" ({e.hint})" if e.hint else ""
        raise FleetFileError([f"{file}:{e.line}:{e.column}: {e.message}{hint}"]) from None
    if len(docs) != 1:
        raise FleetFileError([f"{file}: holds {len(docs)} YAML documents: a fleet file has one"])
    doc = docs[0]
    problems = _schema_problems(file, data, doc)
    if not problems:
        problems = _duplicates(file, data, doc)
    if problems:
        raise FleetFileError(problems)
    return _build(path, doc)


def _build(path: Path, doc: dict[str, Any]) -> Fleet:
    journal = doc["journal"]
    password, problem = None, None
    if "password" in journal:
        ref = _secret(journal["password"])
        try:
            password = secrets.resolve(ref, for_element=False)
        except secrets.SecretUnavailable as e:
            problem = f"journal.password {ref.describe()} is not usable here ({e})"
    state = Path(doc.get("state_dir", ".provgit-fleet"))
    if "state_dir" not in doc:  # beside the file, maybe in a checkout: see fsutil
        check_default_state_dir(path.parent / state)
    fleet_hook = doc.get("webhook_secret")
    networks = tuple(
        FleetNetwork(
            n["name"],
            n["repo"],
            n.get("ref", "main"),
            n.get("path", "."),
            n.get("drift"),
            {k: _secret(v) for k, v in (n.get("secrets") or {}).items()},
            _hook_secret(n.get("webhook_secret", fleet_hook)),
        )
        for n in doc["networks"]
    )
    return Fleet(
        path,
        JournalLocation(journal["url"], password, problem, pool_size=journal.get("pool_size")),
        float(doc.get("leases", {}).get("seconds", DEFAULT_FLEET_LEASE_SECONDS)),
        state if state.is_absolute() else path.parent / state,
        networks,
    )


def _hook_secret(ref: Mapping[str, Any] | None) -> SecretRef | None:
    return None if ref is None else _secret(ref)


def enter_network(fleet: Fleet, network: FleetNetwork) -> None:
    """From now on, in the current context only (run it in a copied context,
    `contextvars.copy_context().run`, that the network's task then runs in),
    the journal and the `{env: NAME}` secrets are `network`'s."""
    use_scoped(fleet.location(network.name))
    secrets.use_env_overrides(dict(network.secrets))
