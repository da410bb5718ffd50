"""JSON Schema (draft 2020-12) for config files, generated from the models.

Editors use these for completion and inline errors while an admin types; the
models stay the single source of truth, and a test keeps the committed files
equal to what this module generates. Cross-record rules (references,
uniqueness) are beyond JSON Schema; `provgit validate` checks those.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from provgit.model.common import SECRET_FILE_PATTERN, SecretRef
from provgit.model.kinds import KINDS
from provgit.model.settings import Settings

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# $id only names the schema; nothing is fetched from it.
ID_BASE = "https://provgit.dev/schemas/"
CONFIG_FILE = "provgit-config.schema.json"
SETTINGS_FILE = "provgit-settings.schema.json"
# Written by hand (it describes the report provgit writes, not a file people
# type) and shipped in the package, so an installed provgit has it too; the
# copy under `schemas/` is what `provgit schema` writes from it.
STATUS_FILE = "status.schema.json"
# The fleet file's (`provgit fleet watch`): hand-written too, read to validate one.
FLEET_FILE = "fleet.schema.json"
# The fleet's /status.json (`provgit fleet watch`).
FLEET_STATUS_FILE = "fleet-status.schema.json"
SHIPPED = (STATUS_FILE, FLEET_FILE, FLEET_STATUS_FILE)


def shipped_schema_text(name: str) -> str:
    """A hand-written schema, as shipped in the package."""
    return (resources.files("provgit") / "schemas" / name).read_text(encoding="utf-8")


def status_schema_text() -> str:
    """The status document's schema (`provgit.status/1`), as shipped in the package."""
    return shipped_schema_text(STATUS_FILE)


def _defs(models: Sequence[type[BaseModel]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model -> $ref, $defs), with shared sub-models defined once."""
    refs, top = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/$defs/{model}"
    )
    defs: dict[str, Any] = top.get("$defs", {})
    _secret_one_of(defs)
    return {m.__name__: refs[(m, "validation")] for m in models}, defs


def config_schema() -> dict[str, Any]:
    """Schema of one config document: optional kind keys, each a list of records."""
    models = [k.model for k in KINDS.values()]
    refs, defs = _defs(models)
    properties = {
        plural: {
            # An empty `users:` is allowed and means no records.
            "type": ["array", "null"],
            "items": refs[kind.model.__name__],
            "description": f"A list of {kind.singular} records (key: {kind.key_field}).",
        }
        for plural, kind in KINDS.items()
    }
    return {
        "$schema": DIALECT,
        "$id": ID_BASE + CONFIG_FILE,
        "title": "provgit config document",
        "description": "A YAML document of a provgit config: kinds mapped to lists of records.",
        "type": ["object", "null"],
        "properties": properties,
        "additionalProperties": False,
        "$defs": defs,
    }


def settings_schema() -> dict[str, Any]:
    """Schema of `provgit.yaml`."""
    schema = Settings.model_json_schema(mode="validation", ref_template="#/$defs/{model}")
    _secret_one_of(schema.get("$defs", {}))
    return {
        "$schema": DIALECT,
        "$id": ID_BASE + SETTINGS_FILE,
        "title": "provgit settings (provgit.yaml)",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def _secret_one_of(defs: dict[str, Any]) -> None:
    # The model checks "exactly one of env or file" in code, and an explicit null
    # counts as absent there; say the same in the schema, so an editor flags `{}`
    # and `{env: X, file: Y}` but not `{env: X, file: null}`. Each branch makes
    # its key a string and the other key absent or null, so at most one matches.
    secret = defs.get(SecretRef.__name__)
    if secret is not None:
        secret["oneOf"] = [
            {
                "required": ["env"],
                # `key` names a secret in a key file: only with `file`.
                "properties": {
                    "env": {"type": "string"},
                    "file": {"type": "null"},
                    "key": {"type": "null"},
                },
            },
            {
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "pattern": SECRET_FILE_PATTERN,
                        "description": "An absolute path (or ~/...) outside the repository.",
                    },
                    "env": {"type": "null"},
                },
            },
        ]


def rendered() -> dict[str, str]:
    """File name -> exact file content, as committed under `schemas/`."""
    return {
        CONFIG_FILE: _dump(config_schema()),
        SETTINGS_FILE: _dump(settings_schema()),
        STATUS_FILE: status_schema_text(),
        FLEET_FILE: shipped_schema_text(FLEET_FILE),
        FLEET_STATUS_FILE: shipped_schema_text(FLEET_STATUS_FILE),
    }


def check(out: Path) -> list[str]:
    """Problems with the schemas in `out`, one line each; empty when all are good.

    Generated files must equal what the models generate now, and
    `status.schema.json` the one provgit ships. A hand-written schema (the
    shipped status schema, and any other `*.schema.json` in `out`) must be
    JSON, a valid draft 2020-12 schema under its metaschema, and name itself in
    `$id`.
    """
    problems = []
    for hand_written in SHIPPED:
        with resources.as_file(resources.files("provgit") / "schemas" / hand_written) as shipped:
            problems += [f"{shipped}: {p}" for p in _hand_written_problems(shipped)]
    for name, text in rendered().items():
        try:
            current: str | None = (out / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = None
        if current == text:
            continue
        source = "the schema provgit ships" if name in SHIPPED else "the models"
        why = "missing" if current is None else f"out of date with {source}"
        problems.append(f"{out / name}: {why} (run `provgit schema` to regenerate)")
        if current is not None and name in SHIPPED:
            # Say what is wrong with it too, not only that it differs.
            problems += [f"{out / name}: {p}" for p in _hand_written_problems(out / name)]
    for path in sorted(out.glob("*.schema.json")):
        if path.name not in rendered():
            problems += [f"{path}: {p}" for p in _hand_written_problems(path)]
    return problems


def _hand_written_problems(path: Path) -> list[str]:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        return [f"cannot read it: {e}"]
    except json.JSONDecodeError as e:
        return [f"{e.lineno}:{e.colno}: not valid JSON: {e.msg}"]
    if not isinstance(schema, dict):
        return ["not a JSON Schema: the top level must be an object"]
    problems = []
    if schema.get("$schema") != DIALECT:
        problems.append(f'"$schema" must be "{DIALECT}"')
    if schema.get("$id") != ID_BASE + path.name:
        problems.append(f'"$id" must be "{ID_BASE + path.name}"')
    for error in jsonschema.Draft202012Validator(
        jsonschema.Draft202012Validator.META_SCHEMA
    ).iter_errors(schema):
        where = "/".join(map(str, error.absolute_path)) or "(top level)"
        problems.append(f"invalid under the draft 2020-12 metaschema at {where}: {error.message}")
    return problems


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
