"""Network elements: call servers, the collaboration server, IVR servers."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

from provgit.model.common import (
    ElementType,
    Hinted,
    Identifier,
    Model,
    SecretRef,
    Text,
    check_option_values,
)


class Connection(Model):
    """Driver settings; `token` is a secret reference, never a value."""

    url: str | None = None
    token: SecretRef | None = None
    timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    concurrency: Annotated[int, Field(ge=1, le=1024)] = 32
    # `path` may leave the state directory only when this says so (read before `path`).
    allow_outside_state_dir: bool = False
    # Embedded driver: the element file, relative to the state directory.
    path: str | None = None
    options: dict[str, Any] = {}

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if "@" in parts.netloc:
            # Not echoed: the URL holds a secret, which must not reach the output either.
            raise Hinted(
                "must not carry a user name or password (the URL is committed with the "
                "config, so they would not be secret)",
                "remove 'user:password@' and give the element's credential as "
                "token: {env: VARIABLE} in connection",
            )
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"must be an http:// or https:// URL with a host (got {v!r}); "
                "elements are reached over HTTP only"
            )
        return v

    @field_validator("path")
    @classmethod
    def _inside_state_dir(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None or info.data.get("allow_outside_state_dir"):
            return v
        p = PurePath(v)
        if p.is_absolute() or v.startswith("~") or ".." in p.parts or "\\" in v or not v.strip():
            raise Hinted(
                f"must be relative to the state directory, without '..' (got {v!r}): "
                "an element file elsewhere needs allow_outside_state_dir: true",
                "write e.g. path: elements/cs1.sqlite (inside the state directory), or set "
                "allow_outside_state_dir: true in connection if the file must live elsewhere",
            )
        return v

    @field_validator("options")
    @classmethod
    def _typed_options(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_option_values(v)


class Element(Model):
    name: Identifier
    type: ElementType
    ceid: Annotated[int, Field(ge=1, le=999)]
    cluster: Identifier | None = None
    admin_group: Identifier | None = None
    partner: Identifier | None = None
    driver: Identifier = "embedded"
    connection: Connection = Connection()
    # e.g. "https://mivb1.example.net/admin/{form}?key={key}": a link into the
    # element's own admin form for a record ({collection}, {form}, {key}).
    reach_through: str | None = None
    description: Text = ""

    @model_validator(mode="after")
    def _checks(self) -> Element:
        if self.type == "mivb" and self.cluster is None:
            raise ValueError("a call server (type mivb) needs a cluster")
        if self.partner is not None and self.partner == self.name:
            raise ValueError("an element cannot be its own resilient partner")
        if self.partner is not None and self.type != "mivb":
            raise ValueError("only call servers (type mivb) have a resilient partner")
        if self.driver == "http" and not self.connection.url:
            raise ValueError("the http driver needs connection.url")
        return self


ElementTypeName = Literal["mivb", "micollab", "ivr"]
