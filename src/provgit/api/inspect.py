"""Looking at a config or a saved plan without contacting any element: which
resources it holds and where each lands, and what a saved plan is. Internal
to the API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from provgit.api.errors import UsageProblem
from provgit.api.sources import default_state_dir, read_settings
from provgit.diagnostics import SHORT_KINDS
from provgit.fsutil import MAX_STATE_FILE_BYTES, NotRegularFile, StateFileTooLarge, read_state_file
from provgit.model.kinds import KINDS, Kind, resolve_kind
from provgit.plan import Plan, PlanFormatError, signing
from provgit.plan.signing import PlanSignatureError
from provgit.projection.project import landings, project, shared_fields
from provgit.records import form_name
from provgit.report.links import reach_through
from provgit.secrets import Fingerprinter

if TYPE_CHECKING:
    from provgit.api.config import Config


def kind_named(name: str) -> Kind | None:
    """The kind `name` stands for (users, user, cos, ...), or None."""
    return resolve_kind(name)


def kind_names() -> list[str]:
    return list(KINDS)


@dataclass(frozen=True)
class Resources:
    """Every resource of the config (of one kind), one row each: kind, key,
    address (as `provgit show` takes it) and the elements it lands on (for
    elements themselves: their type)."""

    network: str
    rows: list[dict[str, Any]]


def resources(config: Config, kind: Kind | None) -> Resources:
    state = config.state()
    rows: list[dict[str, Any]] = []
    if kind is not None and kind.plural == "elements":
        for name, el in state.elements.items():
            rows.append(
                {
                    "kind": "elements",
                    "key": name,
                    "address": f"elements/{name}",
                    "type": el.type,
                    "elements": [],
                }
            )
        return Resources(state.settings.network, rows)
    # One projection of the whole config (no secret resolved): where each record lands.
    target = project(state, Fingerprinter(None, False), config.source.read_other)
    lands: dict[tuple[str, str], list[str]] = {}
    for element, records in target.records.items():
        for collection, keyed in records.items():
            for key in keyed:
                where = lands.setdefault(target.resource_of(element, collection, key), [])
                if element not in where:
                    where.append(element)
    kinds = [kind] if kind is not None else [k for k in KINDS.values() if k.plural != "elements"]
    for k in kinds:
        short = SHORT_KINDS.get(k.plural, k.plural)
        for key in state.of(k.plural):
            rows.append(
                {
                    "kind": k.plural,
                    "key": key,
                    "address": f"{short}/{key}",
                    "elements": lands.get((k.plural, key), []),
                }
            )
    return Resources(state.settings.network, rows)


@dataclass(frozen=True)
class Landings:
    """Where one resource lands: a row per element record (element, type,
    collection, admin form, key, reach-through link, fields), and the fields
    shared to several elements."""

    kind: Kind
    key: str  # as the config spells it
    defined_in: str | None
    shared_fields: list[str]
    rows: list[dict[str, Any]]


def landings_of(config: Config, kind: Kind, key: str) -> Landings:
    state = config.state()
    records = state.of(kind.plural)
    if key not in records:
        folded = {k.casefold(): k for k in records}
        if key.casefold() not in folded:
            raise UsageProblem(f"no {kind.singular} {key!r} in the config at {config.root}")
        key = folded[key.casefold()]
    lands = landings(state, kind.plural, key, Fingerprinter(None, False), config.source.read_other)
    rows = []
    for land in lands:
        el = state.elements[land.element]
        form = form_name(el.type, land.collection)
        rows.append(
            {
                "element": land.element,
                "element_type": el.type,
                "collection": land.collection,
                "form": form,
                "key": land.key,
                "link": reach_through(
                    el.reach_through, land.element, form, land.collection, land.key
                ),
                "fields": {k: v for k, v in land.fields.items() if not k.startswith("_")},
            }
        )
    origin = state.origins.get((kind.plural, key))
    return Landings(kind, key, origin.file if origin else None, shared_fields(lands), rows)


@dataclass(frozen=True)
class InspectedPlan:
    """A saved plan read for showing: the file as saved (`document`, its
    signature included), the plan, and whether the signature holds, in one
    sentence (never a reason to refuse: applying checks everything again)."""

    document: dict[str, Any]
    plan: Plan
    signature: str


def _signature_note(
    text: bytes, doc: dict[str, Any], config: Path | None, state_dir: Path | str | None
) -> str:
    signature = doc.get(signing.SIGNATURE)
    if not isinstance(signature, dict):
        return "signature: none (apply refuses an unsigned plan)"
    if config is None:
        named = doc.get("source")
        config = Path(named) if isinstance(named, str) else None
    settings = read_settings(config) if config is not None else None
    if config is None or settings is None:
        return (
            "signature: not checked (no readable config at "
            f"{str(config) if config else 'the path the plan names'}; pass it as PATH)"
        )
    key = signing.plan_key(settings.secret_key, default_state_dir(config, state_dir), create=False)
    if isinstance(key, str):
        return f"signature: not checked: {key}"
    try:
        signing.check(text, doc, key)
    except PlanSignatureError as e:
        return f"signature: DOES NOT HOLD for the config at {config}: {e}"
    except PlanFormatError as e:
        return f"signature: not checked: {e}"
    return f"signature: holds under the key of the config at {config}"


# A plan of 50,000 users' first rollout is ~160 MB; one past this is no plan
# provgit wrote, and reading it (before its signature can be checked) would
# take the machine's memory: a sparse file, a link to /dev/zero.
MAX_PLAN_FILE_BYTES = MAX_STATE_FILE_BYTES


def plan_file_text(plan_file: Path) -> bytes:
    """A saved plan's bytes (UTF-8 text), read only when it is a regular file (links
    followed) of at most MAX_PLAN_FILE_BYTES: UsageProblem otherwise; OSError
    or UnicodeDecodeError when it cannot be read or is not text."""
    try:
        data = read_state_file(plan_file, MAX_PLAN_FILE_BYTES, follow=True)
    except StateFileTooLarge as e:
        raise UsageProblem(
            f"{plan_file} is {e.size / 2**20:,.0f} MiB, over the "
            f"{MAX_PLAN_FILE_BYTES // 2**20:,} MiB a saved plan may be: not read, nothing applied"
        ) from None
    except NotRegularFile:
        raise UsageProblem(f"{plan_file} is not a regular file: not a saved plan") from None
    data.decode("utf-8")  # text or UnicodeDecodeError (the bytes are what is checked and read)
    return data


def inspect_saved_plan(
    plan_file: Path, config: Path | None = None, state_dir: Path | str | None = None
) -> InspectedPlan:
    """A saved plan and whether its signature holds under the key of `config`
    (default: the config it names). Nothing is contacted or changed."""
    try:
        text = plan_file_text(plan_file)
        doc = orjson.loads(text)
    except OSError as e:
        raise UsageProblem(f"cannot read the plan {plan_file}: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UsageProblem(
            f"{plan_file} is not a provgit plan (not JSON); give KIND/KEY or a file "
            "from `provgit plan --out`"
        ) from None
    body = (
        {k: v for k, v in doc.items() if k != signing.SIGNATURE} if isinstance(doc, dict) else doc
    )
    try:
        plan = Plan.from_json(body)
    except PlanFormatError as e:
        raise UsageProblem(f"{plan_file}: {e}") from None
    return InspectedPlan(doc, plan, _signature_note(text, doc, config, state_dir))
