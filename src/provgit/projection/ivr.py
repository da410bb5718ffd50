"""Projections of the IVR content: media servers, prompts, subroutines and
workflows go to every IVR server (`sharing.<kind>.scope: none` keeps them off)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provgit.projection.context import NO_DEPS, Context, Emit, RecordRef, rec
from provgit.records import Fields

if TYPE_CHECKING:  # the models (pydantic): a status in sync builds none
    from provgit.model.ivr import MediaServer, Prompt, Step, Subroutine, Workflow


def _ivr_targets(ctx: Context, kind: str) -> list[str]:
    return [] if ctx.scope(kind, "all_elements") == "none" else ctx.topo.ivr_servers


def media_server(ctx: Context, emit: Emit, key: str, m: MediaServer) -> None:
    fields = rec(**m.model_dump())
    for el in _ivr_targets(ctx, "ivr_media_servers"):
        emit(el, "media_servers", key, fields, NO_DEPS)


def prompt(ctx: Context, emit: Emit, key: str, m: Prompt) -> None:
    audio = ctx.audio(m.file)
    fields = rec(
        name=m.name,
        language=m.language,
        file=m.file,
        description=m.description,
        audio_sha256=audio[0] if audio else None,
        audio_bytes=audio[1] if audio else None,
    )
    for el in _ivr_targets(ctx, "prompts"):
        emit(el, "prompts", key, fields, NO_DEPS)


def _step_deps(ctx: Context, steps: list[Step]) -> list[RecordRef]:
    prompts = ctx.state.of("prompts")
    deps: list[RecordRef] = []
    for s in steps:
        if s.prompt:
            deps.extend(("prompts", k) for k, p in prompts.items() if p.name == s.prompt)
        if s.subroutine:
            deps.append(("subroutines", s.subroutine))
        for choice in s.choices.values():
            kind, _, name = choice.partition(":")
            if kind == "subroutine" and name:
                deps.append(("subroutines", name))
    return list(dict.fromkeys(deps))


def _steps(steps: list[Step]) -> list[Fields]:
    return [s.model_dump(exclude_defaults=True) for s in steps]


def subroutine(ctx: Context, emit: Emit, key: str, m: Subroutine) -> None:
    fields = rec(
        name=m.name, media_type=m.media_type, description=m.description, steps=_steps(m.steps)
    )
    deps = tuple(d for d in _step_deps(ctx, m.steps) if d != ("subroutines", key))
    for el in _ivr_targets(ctx, "subroutines"):
        emit(el, "subroutines", key, fields, deps)


def workflow(ctx: Context, emit: Emit, key: str, m: Workflow) -> None:
    fields = rec(
        name=m.name,
        media_type=m.media_type,
        description=m.description,
        media_servers=list(m.media_servers),
        steps=_steps(m.steps),
    )
    deps = _step_deps(ctx, m.steps) + [("media_servers", s) for s in m.media_servers]
    for el in _ivr_targets(ctx, "workflows"):
        emit(el, "workflows", key, fields, tuple(deps))
