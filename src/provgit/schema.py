"""JSON Schema (draft 2020-12) for config files, generated from the models.

Editors use these for completion and inline errors while an admin types; the
models stay the single source of truth, and a test keeps the committed files
equal to what this module generates. Cross-record rules (references,
uniqueness) are beyond JSON Schema; `provgit validate` checks those.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from provgit.model.common import SecretRef
from provgit.model.kinds import KINDS
from provgit.model.settings import Settings

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# $id only names the schema; nothing is fetched from it.
ID_BASE = "https://provgit.dev/schemas/"
CONFIG_FILE = "provgit-config.schema.json"
SETTINGS_FILE = "provgit-settings.schema.json"


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
    # The model checks "exactly one of env or file" in code; say it in the schema
    # too, so an editor flags `{}` and `{env: X, file: Y}` while typing.
    secret = defs.get(SecretRef.__name__)
    if secret is not None:
        secret["oneOf"] = [{"required": ["env"]}, {"required": ["file"]}]


def rendered() -> dict[str, str]:
    """File name -> exact file content, as committed under `schemas/`."""
    return {
        CONFIG_FILE: _dump(config_schema()),
        SETTINGS_FILE: _dump(settings_schema()),
    }


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
