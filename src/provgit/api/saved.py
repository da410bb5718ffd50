"""A saved plan (`provgit plan --out`), believed only after every re-check:
its signature under the config's key, the network it names, and everything
planning that config would refuse. Nothing is contacted here.

Internal to the API (`provgit.api`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from provgit.api.config import Config
from provgit.api.errors import PlanRefused, UsageProblem
from provgit.api.inspect import plan_file_text
from provgit.api.known_numbers import known_numbers
from provgit.api.network import desired_target
from provgit.api.planning import PlanRun
from provgit.plan import PlanFormatError, signing
from provgit.plan.feed_check import feed_missed_of
from provgit.plan.recheck import recheck
from provgit.plan.signing import PlanSignatureError


@dataclass(frozen=True)
class SavedPlan:
    """A saved plan that passed every check, and the config it was checked against."""

    config: Config
    run: PlanRun


def read_plan_file(path: Path) -> tuple[bytes, str | None]:
    """The plan file's text, and the config path it names (not trusted yet:
    only used to find the config and key its signature is checked against)."""
    try:
        text = plan_file_text(path)
    except OSError as e:
        raise UsageProblem(f"cannot read the plan {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise UsageProblem(f"{path} is not a provgit plan (not text)") from None
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        if text.lstrip().startswith(b"{"):
            # Begun as a plan is (a JSON object) but cut short or mangled: an
            # artifact damaged in transfer is refused, not taken for a typo.
            raise PlanRefused(
                str(path),
                [
                    f"the plan file is truncated or damaged (not JSON: {e}) and is not "
                    "applied; make it again with `provgit plan --out FILE`"
                ],
            ) from None
        raise UsageProblem(f"{path}: plan file is not JSON: {e}") from None
    named = doc.get("source") if isinstance(doc, dict) else None
    return text, named if isinstance(named, str) else None


def named_config(plan_file: Path, named: str | None) -> Path:
    """The config a saved plan names, when it may be believed without being told.

    The plan's `source` is not signed-checked yet, and it decides which config
    (and so which key) the signature is checked with: a plan pointing at a
    config its author controls could sign itself. So it is only taken when it
    lies in the current directory or below (the checkout the job runs in);
    anywhere else the caller says where the config is.
    """
    root = Path(named or ".")
    cwd = Path.cwd().resolve()
    resolved = root.resolve()
    if resolved == cwd or cwd in resolved.parents:
        return root
    raise UsageProblem(
        f"{plan_file} was made from the config at {named!r}, outside the current "
        "directory; pass --config PATH to say which config (and key) it is checked against"
    )


def open_saved_plan(
    plan_file: Path,
    config: Path | None = None,
    state_dir: Path | str | None = None,
    elements: Sequence[str] = (),
) -> SavedPlan:
    """Read `plan_file` and check it against the config at `config` (default:
    the one it names, when that is in the current directory).

    Raises `PlanRefused` when its signature does not hold, it is another
    network's, or the config would not plan it (tampered, stale rules);
    `InvalidConfig` when the config does not validate; `UsageProblem` for a
    file that is not a plan, or `elements` it does not hold. Nothing is contacted.
    """
    text, named = read_plan_file(plan_file)
    cfg = Config.at(config or named_config(plan_file, named), state_dir)
    state = cfg.state()
    # The signature first, before anything in the plan is believed.
    key = signing.plan_key(state.settings.secret_key, cfg.state_dir, create=False)
    try:
        plan = signing.verify(text, key)
    except PlanSignatureError as e:
        raise PlanRefused(str(plan_file), [str(e)]) from None
    except PlanFormatError as e:
        raise UsageProblem(f"{plan_file}: {e}") from None
    del text  # checked and parsed: its bytes are not held through the recheck
    if state.settings.network != plan.network:
        # Networks may share a secret_key (lab and production in one CI): the
        # signature holds, yet this plan must reach no element of this network.
        raise PlanRefused(
            str(plan_file),
            [
                f"the plan is for network {plan.network!r} but the config at {cfg.root} is "
                f"{state.settings.network!r}; pass --config with that network's config"
            ],
        )
    # Then everything planning this config would refuse (nothing contacted yet).
    problems = recheck(
        plan,
        desired_target(state, cfg.source.read_other, cfg.state_dir),
        state.settings,
        {n: e.type for n, e in state.elements.items()},
        # A swap's spare clashes with no number an element was last seen to
        # hold (but its own user's).
        known_numbers(
            cfg.state_dir, state.elements, owners={s.key for e in plan.elements for s in e.swaps}
        ),
    )
    if problems:
        raise PlanRefused(str(plan_file), problems)
    if elements:
        unknown = [e for e in elements if plan.element(e) is None]
        if unknown:
            raise UsageProblem(f"element(s) not in the plan: {', '.join(unknown)}")
        plan = plan.only(tuple(elements))
    # Observed when it was made, not now: records it does not touch are not
    # known to be in sync, so their pending updates and errors stay.
    missed = feed_missed_of(plan)  # signed with the plan: believed now
    return SavedPlan(cfg, PlanRun(plan, state, cfg.source, fresh=False, feed_missed=missed))
