"""IVR routing content: media servers, prompts, subroutines, workflows."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from provgit.model.common import MediaType, Model, Name, Text, repo_relative_path

Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")]


class MediaServer(Model):
    name: Name
    media_type: MediaType = "voice"
    host: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    port: Annotated[int, Field(ge=1, le=65535)] = 5060
    description: Text = ""


class Prompt(Model):
    name: Name
    language: Language = "en-US"
    # A WAV file inside the config repository; provgit ships its content hash.
    file: Annotated[str, AfterValidator(repo_relative_path)]
    description: Text = ""

    @property
    def key(self) -> str:
        return f"{self.name}:{self.language}"


# A menu choice: one phone key -> what pressing it does. Checked across records
# (the subroutine must exist) in `provgit.validate.rules`.
MENU_KEYS = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#")
CHOICE_PLAIN = ("repeat", "hangup")
CHOICE_TARGETED = {"transfer": "number", "queue": "queue name", "subroutine": "subroutine name"}

Action = Literal["play", "menu", "collect", "queue", "transfer", "subroutine", "hangup"]


class Step(Model):
    action: Action
    prompt: Name | None = None
    subroutine: Name | None = None
    target: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    # menu: key (0-9, *, #) -> what pressing it does: "transfer:2000",
    # "queue:agents", "subroutine:Name", "repeat" or "hangup"
    choices: Annotated[
        dict[str, str],
        Field(
            description="menu steps: a phone key (0-9, *, #) -> repeat, hangup, "
            "transfer:<digits>, queue:<name> or subroutine:<name>"
        ),
    ] = {}
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] | None = None

    @model_validator(mode="after")
    def _fields_for_action(self) -> Step:
        needs = {
            "play": "prompt",
            "menu": "prompt",
            "collect": "prompt",
            "subroutine": "subroutine",
            "transfer": "target",
            "queue": "target",
        }.get(self.action)
        if needs is not None and getattr(self, needs) is None:
            raise ValueError(f"a {self.action} step needs {needs}")
        return self


class Subroutine(Model):
    name: Name
    media_type: MediaType = "voice"
    description: Text = ""
    steps: Annotated[list[Step], Field(min_length=1, max_length=200)]


class Workflow(Model):
    name: Name
    media_type: MediaType = "voice"
    description: Text = ""
    media_servers: Annotated[list[Name], Field(min_length=1)]
    steps: Annotated[list[Step], Field(min_length=1, max_length=500)]
