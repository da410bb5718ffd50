"""docs/architecture.md's table of who may import whom is the layers contract
that CI checks (`.importlinter`), not a drawing that drifts from it (#14)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def contract_layers() -> list[list[str]]:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    rows = []
    for line in config["importlinter:contract:layers"]["layers"].splitlines():
        line = line.split("#", 1)[0].strip().strip("()")
        if line:
            rows.append(sorted(part.strip() for part in line.split("|")))
    return rows


def documented_layers() -> list[list[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("<!-- layers -->", 1)[1].split("<!-- /layers -->", 1)[0]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].isdigit():
            continue
        rows.append(sorted(re.findall(r"`([\w_]+)`", cells[1])))
    return rows


def test_the_documented_import_layers_are_the_checked_ones() -> None:
    assert documented_layers() == contract_layers()


def test_every_package_and_module_of_provgit_has_a_documented_layer() -> None:
    documented = {name for row in documented_layers() for name in row}
    src = ROOT / "src" / "provgit"
    present = {
        p.stem if p.is_file() else p.name
        for p in src.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    assert present <= documented, sorted(present - documented)
