"""Building blocks shared by the resource models."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from provgit.model.secret_patterns import SECRET_FILE_PATTERN as SECRET_FILE_PATTERN
from provgit.model.secret_patterns import SECRET_KEY_PATTERN as SECRET_KEY_PATTERN


class Model(BaseModel):
    """Frozen, strict, no unknown fields: a typo is an error, never ignored."""

    # Validators are built at the first validation, not at import: a no-op
    # reconcile only unpickles the memo's settings and elements (their class
    # defaults are made with `model_construct` for the same reason).
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, defer_build=True)


class Hinted(ValueError):
    """A validation refusal that also says how to fix it (shown as the hint)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


# YAML 1.1 read these as booleans; YAML 1.2 (what provgit reads) keeps them as
# text, so `toll_denied: no` would reach the elements as the string "no".
YAML11_BOOLEANS = {
    w: w.lower() in ("y", "yes", "on")
    for base in ("y", "yes", "on", "n", "no", "off")
    for w in (base, base.capitalize(), base.upper())
}


def _not_yaml11_boolean(v: Any) -> Any:
    if isinstance(v, str) and v in YAML11_BOOLEANS:
        meant = "true" if YAML11_BOOLEANS[v] else "false"
        raise Hinted(
            f"is the text {v!r}, not a boolean",
            f"write {meant}; YAML 1.2 reads `{v}` as the string {v!r}, which an element "
            "would take as text",
        )
    return v


def check_option_values(options: dict[str, Any]) -> dict[str, Any]:
    """Element options: booleans are true/false, never YAML 1.1 `yes`/`no` text."""
    for key, value in options.items():
        if isinstance(value, dict):
            check_option_values(value)
        elif isinstance(value, list):
            for item in value:
                _not_yaml11_boolean(item)
        elif isinstance(value, str) and value in YAML11_BOOLEANS:
            try:
                _not_yaml11_boolean(value)
            except Hinted as e:
                raise Hinted(f"option {key!r} {e}", e.hint) from None
    return options


def _option_value(v: Any) -> Any:
    # One check instead of a union: a wrong value gets one error, not one per type.
    if not isinstance(v, (bool, int, str)):
        shown = f"{v!r} (a number)" if isinstance(v, float) else type(v).__name__
        raise ValueError(f"must be true or false, a whole number or text, got {shown}")
    return _not_yaml11_boolean(v)


# A value of an element option: true/false, a whole number or text, where text
# never spells a YAML 1.1 boolean.
OptionValue = Annotated[
    Any,
    AfterValidator(_option_value),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, {"type": "integer"}, {"type": "string"}]}),
]


def _no_accents(v: str) -> str:
    if v.isascii():  # nearly every name: one C pass, not a set built per name
        return v
    bad = sorted({c for c in v if ord(c) > 127})
    if bad:
        raise ValueError(
            f"contains accented or non-ASCII characters ({''.join(bad)}); "
            "call servers only accept plain ASCII here"
        )
    return v


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be blank")
    if v.strip() in (".", ".."):
        # A name is a record key, and a key is a path segment of the element
        # API: `/records/departments/..` is another URL to any proxy on the way.
        raise ValueError(f"{v!r} cannot be a name (it reads as a path step)")
    return v


Name = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_not_blank)]
AsciiName = Annotated[Name, AfterValidator(_no_accents)]
Text = Annotated[str, StringConstraints(max_length=255)]
# An element or network name: used in file names and URLs.
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
MediaType = Literal["voice", "email", "chat", "sms", "open"]
ElementType = Literal["mivb", "micollab", "ivr", "directory"]


class SecretRef(Model):
    """Where a secret lives. The repository never holds the value itself.

    `env`: an environment variable name. `file`: an absolute path (or ~/...) to a
    file outside the config repository, whose first line is the value; with
    `key`, a key file of `NAME=value` lines and the value is NAME's (one file
    for many secrets, e.g. 100,000 voicemail PINs, read once per run).
    """

    env: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    file: str | None = None
    key: Annotated[str, StringConstraints(pattern=SECRET_KEY_PATTERN)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _reference_not_value(cls, data: Any) -> Any:
        if isinstance(data, (str, int, float)) and not isinstance(data, bool):
            raise ValueError(
                "a secret must be a reference, not a value: write {env: VARIABLE} or "
                "{file: /path/outside/the/repo}"
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        if self.key is not None and self.file is None:
            raise ValueError("key names a secret in a key file: give it with file, not env")
        if self.file is not None and not re.match(SECRET_FILE_PATTERN, self.file):
            raise ValueError(
                "a secret file must be an absolute path outside the repository "
                "(a relative path would be a file inside it)"
            )
        return self

    def describe(self) -> str:
        if self.env:
            return f"env:{self.env}"
        # "key:NAME@PATH": a key name holds no "@", so the first one splits it.
        return f"key:{self.key}@{self.file}" if self.key is not None else f"file:{self.file}"


class CosSet(Model):
    """Class of service numbers for the day, night 1 and night 2 service periods."""

    day: Annotated[int, Field(ge=1, le=110)]
    night1: Annotated[int, Field(ge=1, le=110)] | None = None
    night2: Annotated[int, Field(ge=1, le=110)] | None = None

    def numbers(self) -> dict[str, int]:
        n1 = self.night1 if self.night1 is not None else self.day
        n2 = self.night2 if self.night2 is not None else n1
        return {"day": self.day, "night1": n1, "night2": n2}


class CorSet(Model):
    """Class of restriction group numbers per service period."""

    day: Annotated[int, Field(ge=1, le=64)]
    night1: Annotated[int, Field(ge=1, le=64)] | None = None
    night2: Annotated[int, Field(ge=1, le=64)] | None = None

    def numbers(self) -> dict[str, int]:
        n1 = self.night1 if self.night1 is not None else self.day
        n2 = self.night2 if self.night2 is not None else n1
        return {"day": self.day, "night1": n1, "night2": n2}


_SAFE_REL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./ -]*$")


def repo_relative_path(v: str) -> str:
    """A path inside the config repository: relative, no `..`, no backslashes."""
    if v.startswith("/") or re.match(r"^[A-Za-z]:", v):
        raise ValueError("must be a path relative to the config root, not an absolute path")
    if "\\" in v:
        raise ValueError("use forward slashes in paths")
    parts = PurePosixPath(v).parts
    if ".." in parts:
        raise ValueError("must stay inside the config root ('..' is not allowed)")
    if not _SAFE_REL.match(v):
        raise ValueError("contains characters not allowed in a file path")
    return v
