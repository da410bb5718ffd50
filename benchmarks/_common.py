"""Helpers shared by the benchmark scripts (run from this folder, not a package)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from provgit.api.network import connect, desired_target  # noqa: E402
from provgit.drivers.base import WriteOp  # noqa: E402
from provgit.registry import COLLECTION_ORDER  # noqa: E402
from provgit.source import read_directory  # noqa: E402
from provgit.validate import validate_source  # noqa: E402


def generated(users: int) -> Path:
    """The generated benchmark network of `users` users (made once, then reused)."""
    root = HERE / "data" / f"net{users // 1000}k"
    if not root.exists():
        gen = [sys.executable, str(HERE / "generate.py"), "--users", str(users)]
        subprocess.run([*gen, "--out", str(root)], check=True)
    return root


def populate(root: Path, state_dir: Path) -> int:
    """Put every record the config projects onto its embedded elements (as an apply would)."""
    source = read_directory(root)
    valid = validate_source(source, state_dir / "cache")
    assert valid.ok, valid.diagnostics[:3]
    target = desired_target(valid.state, source.read_other, state_dir)
    network = connect(valid.state, state_dir, root)

    async def write_all() -> int:
        n = 0
        for name, driver in network.drivers.items():
            ops = [
                WriteOp("put", c, k, f, None)
                for c in COLLECTION_ORDER
                for k, f in target.records[name].get(c, {}).items()
            ]
            for i in range(0, len(ops), 5000):
                bad = [r for r in await driver.write_batch(ops[i : i + 5000]) if not r.ok]
                assert not bad, bad[0].error
            n += len(ops)
        await network.close()
        return n

    return asyncio.run(write_all())
