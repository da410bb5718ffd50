"""Which IVR content changes go out together on one element (apply/holds.py)."""

from __future__ import annotations

from provgit.apply.holds import ivr_groups
from provgit.plan.model import Action, Operation


def _op(action: Action, kind: str, key: str, *deps: tuple[str, str]) -> Operation:
    collection = "media_servers" if kind == "ivr_media_servers" else kind
    return Operation(action, collection, key, kind, key, depends_on=deps)


def test_a_workflow_groups_with_the_subroutines_and_prompts_it_uses_transitively() -> None:
    ops = [
        _op("add", "prompts", "welcome:en-US"),
        _op("add", "prompts", "other:en-US"),
        _op("modify", "subroutines", "Menu", ("prompts", "welcome:en-US")),
        _op("add", "ivr_media_servers", "ms1"),
        _op("add", "workflows", "Main", ("subroutines", "Menu"), ("media_servers", "ms1")),
    ]
    groups = ivr_groups(ops)
    main = {("prompts", "welcome:en-US"), ("subroutines", "Menu"), ("workflows", "Main")}
    assert groups[("workflows", "Main")] == main
    assert groups[("prompts", "welcome:en-US")] == main
    # Unrelated content goes alone; media servers are not held by call load.
    assert groups[("prompts", "other:en-US")] == {("prompts", "other:en-US")}
    assert ("media_servers", "ms1") not in groups


def test_a_removed_prompt_goes_with_every_ivr_change_on_the_element() -> None:
    ops = [
        _op("delete", "prompts", "old:en-US"),
        _op("modify", "workflows", "Main"),
        _op("add", "prompts", "new:en-US"),
    ]
    groups = ivr_groups(ops)
    assert groups[("prompts", "new:en-US")] == {
        ("prompts", "old:en-US"),
        ("workflows", "Main"),
        ("prompts", "new:en-US"),
    }
