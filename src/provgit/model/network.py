"""Network elements: call servers, the collaboration server, IVR servers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from provgit.model.common import ElementType, Identifier, Model, SecretRef, Text


class Connection(Model):
    """Driver settings; `token` is a secret reference, never a value."""

    url: str | None = None
    token: SecretRef | None = None
    timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    concurrency: Annotated[int, Field(ge=1, le=1024)] = 32
    path: str | None = None  # embedded driver: where the element file lives
    options: dict[str, Any] = {}


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
