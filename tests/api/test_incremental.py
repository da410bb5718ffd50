"""The watcher's incremental planning session (`provgit.api.incremental`)
validates as the API does: run after run, on the same files, it finds the same
problems, builds the same network and counts files parsed and cached alike,
though it keeps parsed files and built models in memory between runs."""

from __future__ import annotations

import shutil
from pathlib import Path

from provgit.api import Config
from provgit.api.incremental import StageCache

from .test_api import NEW_USER


def _agree(cache: StageCache, sample: Path, api_state: Path) -> bool:
    """Validate the files as they are now both ways; True if the config is valid."""
    config = Config.open(sample, api_state)  # a new handle: a snapshot of the files now
    _, incremental = cache.validate(config.source)
    full = config.validated()
    assert incremental.diagnostics == full.diagnostics
    assert incremental.ok == full.ok
    assert incremental.state.counts() == full.state.counts()
    assert (incremental.files, incremental.parsed, incremental.cached) == (
        full.files,
        full.parsed,
        full.cached,
    )
    verdict = config.validate()  # what `provgit validate` says
    assert verdict.diagnostics == full.diagnostics
    assert verdict.counts == incremental.state.counts()
    return full.ok


def test_incremental_validation_finds_and_counts_as_the_api_does_run_after_run(
    sample: Path, tmp_path: Path
) -> None:
    # Each side has a parse cache of its own on disk, both cold at first.
    cache = StageCache(tmp_path / "watch-state")
    api_state = tmp_path / "api-state"
    sales = sample / "people" / "sales.yaml"
    original = sales.read_text()

    assert _agree(cache, sample, api_state)

    sales.write_text(original + NEW_USER)  # one file changed: parsed again, the rest not
    assert _agree(cache, sample, api_state)

    sales.write_text(original + "  - login_id: [unclosed\n")  # a YAML error
    assert not _agree(cache, sample, api_state)

    (sample / "people" / "broken.yaml").write_text(  # a record error in a new file
        "users:\n  - login_id: bad\n    first_name: Bad\n    last_name: User\n    role: Nobody\n"
    )
    sales.write_text(original + NEW_USER)
    assert not _agree(cache, sample, api_state)

    (sample / "people" / "broken.yaml").unlink()  # back to files both have seen
    assert _agree(cache, sample, api_state)


def test_a_cleared_session_validates_as_a_fresh_start(sample: Path, tmp_path: Path) -> None:
    cache = StageCache(tmp_path / "watch-state")
    api_state = tmp_path / "api-state"
    assert _agree(cache, sample, api_state)
    cache.clear()  # SIGHUP: forget what is in memory; the disk cache serves
    shutil.rmtree(api_state / "cache")
    shutil.copytree(tmp_path / "watch-state" / "cache", api_state / "cache")
    assert _agree(cache, sample, api_state)
