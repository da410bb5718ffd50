"""JSON Schemas: committed files match the models, and real configs pass them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from provgit.cli import main
from provgit.load.yaml_events import parse_documents
from provgit.schema import CONFIG_FILE, SETTINGS_FILE, config_schema, rendered, settings_schema
from provgit.source import SETTINGS_FILE as SETTINGS_YAML
from validate.base import BASE  # tests/ is on sys.path: pytest rootdir imports

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"
SAMPLE = REPO / "sample-config"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def _yaml_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*.y*ml")
        if p.suffix in (".yaml", ".yml") and not any(s.startswith(".") for s in p.parts)
    )


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(schema: dict[str, Any], doc: Any) -> list[str]:
    return [e.message for e in _validator(schema).iter_errors(doc)]


def test_committed_schemas_equal_what_the_models_generate() -> None:
    for name, text in rendered().items():
        assert (SCHEMAS / name).read_text(encoding="utf-8") == text, (
            f"schemas/{name} is stale; run `provgit schema`"
        )


def test_schemas_are_draft_2020_12_with_an_id() -> None:
    for schema in (config_schema(), settings_schema()):
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith(".schema.json")
        jsonschema.Draft202012Validator.check_schema(schema)


FLEET = ("fleet.schema.json", "fleet-status.schema.json")


def test_schema_check_passes_on_the_repository_and_fails_on_stale_files(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["schema", "--check", "--out", str(SCHEMAS)])
    assert ok.exit_code == 0, ok.output
    written = runner.invoke(main, ["schema", "--out", str(tmp_path)])
    assert written.exit_code == 0, written.output
    # The status document's and the fleet file's schemas come along: an
    # installed provgit ships them.
    names = [
        CONFIG_FILE,
        SETTINGS_FILE,
        "status.schema.json",
        "fleet.schema.json",
        "fleet-status.schema.json",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    assert (tmp_path / "status.schema.json").read_bytes() == (
        SCHEMAS / "status.schema.json"
    ).read_bytes()
    (tmp_path / CONFIG_FILE).write_text("{}\n")
    stale = runner.invoke(main, ["schema", "--check", "--out", str(tmp_path)])
    assert stale.exit_code == 1
    assert f"{CONFIG_FILE}: out of date" in stale.output
    (tmp_path / "status.schema.json").write_text('{"$id": "x"}\n')
    stale = runner.invoke(main, ["schema", "--check", "--out", str(tmp_path)])
    assert "status.schema.json: out of date with the schema provgit ships" in stale.output


def test_secret_ref_is_an_object_with_env_or_file() -> None:
    schema = config_schema()
    user = {"login_id": "bob", "first_name": "B", "last_name": "J", "host": "cs1"}
    user["services"] = [{"dn": "2000"}]  # type: ignore[assignment]
    assert _errors(schema, {"users": [{**user, "voicemail_pin": {"env": "PIN"}}]}) == []
    assert _errors(schema, {"users": [{**user, "voicemail_pin": {"file": "/run/pin"}}]}) == []
    for bad in ("1234", {}, {"env": "PIN", "file": "/run/pin"}, {"value": "1234"}):
        assert _errors(schema, {"users": [{**user, "voicemail_pin": bad}]}), bad


def test_schema_rejects_unknown_kinds_and_fields() -> None:
    schema = config_schema()
    assert _errors(schema, {"user": []})
    assert _errors(schema, {"departments": [{"name": "Sales", "colour": "red"}]})
    assert _errors(schema, {"departments": {"name": "Sales"}})
    assert _errors(schema, {"departments": [{"name": "Sales"}], "roles": None}) == []


def _check_tree(root: Path) -> None:
    """Every YAML file under root against its schema, with jsonschema and check-jsonschema."""
    files = _yaml_files(root)
    assert files, f"no YAML files under {root}"
    config_files, settings_files = [], []
    for path in files:
        is_settings = path.relative_to(root).as_posix() == SETTINGS_YAML
        schema = settings_schema() if is_settings else config_schema()
        (settings_files if is_settings else config_files).append(path)
        for i, doc in enumerate(parse_documents(path.read_bytes())):
            errors = _errors(schema, doc)
            assert errors == [], f"{path} document {i}: {errors}"
    for schema_file, group in (
        (CONFIG_FILE, config_files),
        (SETTINGS_FILE, settings_files),
    ):
        if not group:
            continue
        p = subprocess.run(
            [str(CHECK_JSONSCHEMA), "--schemafile", str(SCHEMAS / schema_file), *map(str, group)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 0, p.stdout + p.stderr


def test_test_network_passes_the_schemas(tmp_path: Path) -> None:
    for rel, content in BASE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (tmp_path / rel).write_bytes(content)
        else:
            (tmp_path / rel).write_text(content)
    _check_tree(tmp_path)


def test_sample_config_passes_the_schemas() -> None:
    if not _yaml_files(SAMPLE):
        pytest.fail("sample-config/ has no YAML files")
    _check_tree(SAMPLE)


def test_check_jsonschema_reports_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("departments:\n  - name: Sales\n    colour: red\n")
    p = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--schemafile", str(SCHEMAS / CONFIG_FILE), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1
    assert "colour" in p.stdout + p.stderr


def test_schemas_are_plain_json_files() -> None:
    for name in (CONFIG_FILE, SETTINGS_FILE):
        assert isinstance(json.loads((SCHEMAS / name).read_text(encoding="utf-8")), dict)


def test_schema_check_covers_the_hand_written_status_schema(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in (CONFIG_FILE, SETTINGS_FILE, "status.schema.json", *FLEET):
        (tmp_path / name).write_bytes((SCHEMAS / name).read_bytes())
    assert runner.invoke(main, ["schema", "--check", "--out", str(tmp_path)]).exit_code == 0
    status = tmp_path / "status.schema.json"
    schema = json.loads(status.read_text(encoding="utf-8"))
    schema["properties"]["format"] = {"const": "provgit.status/1", "minLength": "one"}
    status.write_text(json.dumps(schema), encoding="utf-8")
    bad = runner.invoke(main, ["schema", "--check", "--out", str(tmp_path)])
    assert bad.exit_code == 1
    assert "status.schema.json: invalid under the draft 2020-12 metaschema" in bad.output
    assert "properties/format/minLength" in bad.output
    status.write_text('{"$schema": 1,\n  nope}', encoding="utf-8")
    broken = runner.invoke(main, ["schema", "--check", "--out", str(tmp_path)])
    assert broken.exit_code == 1
    assert "status.schema.json: 2:3: not valid JSON" in broken.output


def test_every_committed_schema_is_checked_and_valid() -> None:
    from provgit.schema import check

    names = {p.name for p in SCHEMAS.glob("*.schema.json")}
    assert {CONFIG_FILE, SETTINGS_FILE, "status.schema.json", *FLEET} <= names
    assert check(SCHEMAS) == []
