"""In-memory element observations for the analysis tests (no processes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provgit.drivers.base import StoredRecord
from provgit.importing.analysis import Analysis, Options, analyse
from provgit.observe import Observation
from provgit.projection import project
from provgit.records import MANAGED_BY
from provgit.secrets import Fingerprinter
from provgit.source import read_directory
from provgit.validate import validate_source

from .conftest import SETTINGS, elements_yaml, truth_config, write_wavs

DEFAULT = Options()
Records = dict[str, dict[str, dict[str, dict[str, Any]]]]  # element -> coll -> key -> fields


def truth_records(tmp: Path) -> Records:
    """What each element holds for the test network, as provisioned by hand."""
    root = truth_config(tmp / "truth")
    valid = validate_source(read_directory(root), None)
    assert valid.ok, valid.diagnostics
    target = project(
        valid.state, Fingerprinter(b"k", resolve_values=False), read_directory(root).read_other
    )
    out: Records = {}
    for element, colls in target.records.items():
        out[element] = {
            c: {
                k: {f: v for f, v in fields.items() if f != MANAGED_BY}
                for k, fields in recs.items()
            }
            for c, recs in colls.items()
        }
    # A JSON round trip, not deepcopy: the projection shares one fields object
    # between host and partner, and a case changes only one of them.
    result: Records = json.loads(json.dumps(out))
    return result


def observations(records: Records) -> dict[str, Observation]:
    return {
        element: Observation(
            element,
            "running",
            1,
            {
                c: {k: StoredRecord(c, k, f, 1) for k, f in recs.items()}
                for c, recs in colls.items()
            },
        )
        for element, colls in records.items()
    }


def config(tmp: Path, files: dict[str, str] | None = None, audio: bool = True) -> Path:
    """A config root: settings, elements, prompt audio and any extra YAML files."""
    root = tmp / "config"
    root.mkdir(parents=True, exist_ok=True)
    (root / "provgit.yaml").write_text(SETTINGS)
    (root / "elements.yaml").write_text(elements_yaml())
    if audio:
        write_wavs(root)
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def run(
    tmp: Path,
    mutate: Callable[[Records], None] | None = None,
    files: dict[str, str] | None = None,
    options: Options = DEFAULT,
    audio: bool = True,
) -> Analysis:
    records = truth_records(tmp)
    if mutate is not None:
        mutate(records)
    root = config(tmp, files, audio)
    source = read_directory(root)
    valid = validate_source(source, None)
    assert valid.ok, valid.diagnostics
    return analyse(valid.state, source, observations(records), options)
