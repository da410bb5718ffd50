"""The JSON Schemas and the models agree: what `provgit validate` accepts, an editor
(check-jsonschema here, as the YAML language server or ajv would) accepts too, and on
secret references they agree both ways.

The models check more than a schema can say (look-alike logins, paths, references
between records), so a document the models refuse may still pass the schema; the
reverse would be a false error in every editor, and is what these tests forbid.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from provgit.load.loader import LoadedFile
from provgit.load.yaml_events import YamlProblem, parse_documents
from provgit.model.build import build_file
from provgit.schema import CONFIG_FILE, SETTINGS_FILE
from provgit.source import SETTINGS_FILE as SETTINGS_YAML
from validate import test_bad_inputs, test_bad_inputs_rules, test_bad_inputs_source

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"

USER = {"login_id": "bob", "first_name": "B", "last_name": "J", "host": "cs1"}

# Each where a secret reference stands: a user's voicemail PIN, an element's token
# (config schema) and the network's secret_key (settings schema).
SECRET_EDGES: dict[str, Any] = {
    "env": {"env": "PIN"},
    "file": {"file": "/run/secrets/pin"},
    "file_in_home": {"file": "~/pin"},
    "env_and_null_file": {"env": "PIN", "file": None},
    "null_env_and_file": {"env": None, "file": "/run/pin"},
    "both": {"env": "PIN", "file": "/run/pin"},
    "both_null": {"env": None, "file": None},
    "neither": {},
    "relative_file": {"file": "secrets/pin"},
    "bad_env_name": {"env": "1PIN"},
    "empty_env": {"env": ""},
    "env_not_a_string": {"env": 5},
    "unknown_key": {"env": "PIN", "value": "1234"},
    "a_value": "1234",
    "file_and_key": {"file": "/run/secrets/pins", "key": "PIN_JDOE"},
    "env_and_key": {"env": "PIN", "key": "PIN_JDOE"},
    "key_alone": {"key": "PIN_JDOE"},
    "bad_key_name": {"file": "/run/secrets/pins", "key": "PIN JDOE"},
    "a_number": 1234,
    "null": None,
    "a_list": ["PIN"],
}


def _model_accepts(path: str, doc: Any) -> bool:
    """The verdict of the model stage itself, on one document of one file."""
    if path == SETTINGS_YAML and doc is None:
        return False  # validate: "provgit.yaml is empty; the network's settings are required"
    return not build_file(LoadedFile(path, "", b"", [doc])).findings


def _schema_refuses(docs: dict[str, tuple[str, Any]], tmp_path: Path) -> set[str]:
    """Names check-jsonschema refuses, each document in a JSON file of its own."""
    refused: set[str] = set()
    for schema in (CONFIG_FILE, SETTINGS_FILE):
        files = {}
        for name, (path, doc) in docs.items():
            if (path == SETTINGS_YAML) == (schema == SETTINGS_FILE):
                f = tmp_path / schema / f"{len(files)}.json"
                f.parent.mkdir(exist_ok=True)
                f.write_text(json.dumps(doc), encoding="utf-8")
                files[str(f)] = name
        if not files:
            continue
        p = subprocess.run(
            [str(CHECK_JSONSCHEMA), "--schemafile", str(SCHEMAS / schema), "-o", "json", *files],
            capture_output=True,
            text=True,
            timeout=120,
        )
        report = json.loads(p.stdout)
        assert not report["parse_errors"], report["parse_errors"]
        assert p.returncode == (1 if report["errors"] else 0), p.stderr
        refused |= {files[e["filename"]] for e in report["errors"]}
    return refused


def _verdicts(docs: dict[str, tuple[str, Any]], tmp_path: Path) -> dict[str, tuple[bool, bool]]:
    refused = _schema_refuses(docs, tmp_path)
    return {n: (_model_accepts(p, d), n not in refused) for n, (p, d) in docs.items()}


def _secret_docs() -> dict[str, tuple[str, Any]]:
    docs: dict[str, tuple[str, Any]] = {}
    for name, ref in SECRET_EDGES.items():
        user = {**USER, "voicemail_pin": ref, "services": [{"dn": "2000"}]}
        docs[f"voicemail_pin {name}"] = ("people/x.yaml", {"users": [user]})
        element = {"name": "ivr9", "type": "ivr", "ceid": 9, "connection": {"token": ref}}
        docs[f"element token {name}"] = ("network/x.yaml", {"elements": [element]})
        settings = {"version": 1, "network": "north", "secret_key": ref}
        docs[f"secret_key {name}"] = (SETTINGS_YAML, settings)
    return docs


def test_schema_and_model_agree_on_every_secret_reference(tmp_path: Path) -> None:
    verdicts = _verdicts(_secret_docs(), tmp_path)
    disagree = {n: v for n, v in verdicts.items() if v[0] != v[1]}
    assert disagree == {}, "(model accepts, schema accepts): " + repr(disagree)
    # Both ways: some accepted, some refused, and the reported case is accepted.
    for where in ("voicemail_pin", "element token", "secret_key"):
        assert verdicts[f"{where} env_and_null_file"] == (True, True)
        assert verdicts[f"{where} null_env_and_file"] == (True, True)
        assert verdicts[f"{where} both"] == (False, False)
        assert verdicts[f"{where} relative_file"] == (False, False)
        assert verdicts[f"{where} file_and_key"] == (True, True)
        assert verdicts[f"{where} env_and_key"] == (False, False)


def _bad_input_docs() -> dict[str, tuple[str, Any]]:
    """Every YAML document of the bad-input tables that parses."""
    docs: dict[str, tuple[str, Any]] = {}
    for module in (test_bad_inputs, test_bad_inputs_rules, test_bad_inputs_source):
        for case_name, case in module.CASES.items():
            for rel, content in case.files.items():
                if not rel.endswith((".yaml", ".yml")) or not isinstance(content, str | bytes):
                    continue
                data = content.encode() if isinstance(content, str) else content
                try:
                    parsed = parse_documents(data)
                    json.dumps(parsed)
                except (YamlProblem, UnicodeDecodeError, TypeError, ValueError):
                    continue  # neither side gets a document to check
                for i, doc in enumerate(parsed):
                    docs[f"{module.__name__}:{case_name}:{rel}#{i}"] = (rel, doc)
    return docs


def test_schema_never_refuses_what_the_models_accept_in_the_bad_input_tables(
    tmp_path: Path,
) -> None:
    docs = _bad_input_docs()
    assert len(docs) > 100, "the bad-input tables were not found"
    verdicts = _verdicts(docs, tmp_path)
    false_errors = sorted(n for n, (model, schema) in verdicts.items() if model and not schema)
    assert false_errors == [], "an editor would flag what provgit validate accepts"
    # The schema is not vacuous over the tables: it refuses much of what the models do.
    both = sum(not model and not schema for model, schema in verdicts.values())
    assert both > 20, both
