"""The terminal progress bar of apply, reconcile and errors retry/force."""

from __future__ import annotations

import io

from rich.console import Console

from provgit.cli.applying import BarProgress


def test_the_bar_starts_with_the_first_element_not_while_planning() -> None:
    out = io.StringIO()
    with BarProgress(Console(file=out, force_terminal=True, width=100)) as bar:
        # The API call plans first: nothing is drawn until the apply reaches an element.
        assert not bar.started and out.getvalue() == ""
        bar.element_started("mivb1", 2)
        bar.advanced("mivb1", 1, 2)
        bar.element_finished("mivb1", "Sync Completed")
        assert bar.started
    assert "Sync Completed" in out.getvalue()


def test_a_run_that_reaches_no_element_draws_no_bar() -> None:
    out = io.StringIO()
    with BarProgress(Console(file=out, force_terminal=True, width=100)) as bar:
        pass
    assert not bar.started and out.getvalue() == ""
