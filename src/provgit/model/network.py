"""Network elements: call servers, the collaboration server, IVR servers."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Any
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
from provgit.model.directory import DirectorySettings

# Seconds: an honest answer (a page of 5,000 records, a feed page of 10,000
# changes) takes well under a second on a LAN; this leaves room for a slow one.
DEFAULT_REQUEST_DEADLINE = 120.0


class Connection(Model):
    """Driver settings; `token` is a secret reference, never a value."""

    url: str | None = None
    token: SecretRef | None = None
    timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    # The whole of one request, its answer read to the end: a per-read timeout
    # alone never fires on an element that sends a byte now and then.
    request_deadline: Annotated[float, Field(gt=0, le=3600)] = DEFAULT_REQUEST_DEADLINE
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
        # ldap(s) only for a directory element: Element's own check says so.
        if parts.scheme.lower() not in ("http", "https", "ldap", "ldaps") or not parts.netloc:
            raise ValueError(
                f"must be an http:// or https:// URL with a host (got {v!r}); "
                "elements are reached over HTTP only, a directory element over "
                "ldap:// or ldaps://"
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


# The driver an element has when its config names none. Defined with the model
# (not the driver registry) so validation can ask it without importing drivers.
DEFAULT_DRIVER = "embedded"


class Element(Model):
    name: Identifier
    type: ElementType
    ceid: Annotated[int, Field(ge=1, le=999)]
    cluster: Identifier | None = None
    admin_group: Identifier | None = None
    partner: Identifier | None = None
    driver: Identifier = DEFAULT_DRIVER
    connection: Connection = Connection.model_construct()
    # e.g. "https://mivb1.example.net/admin/{form}?key={key}": a link into the
    # element's own admin form for a record ({collection}, {form}, {key}).
    reach_through: str | None = None
    description: Text = ""
    # A directory element (type directory, driver ldap): the OU and the mapping.
    directory: DirectorySettings | None = None
    # Observed (plan, status, import read it) but never written: a source, not a target.
    read_only: bool = False

    @field_validator("reach_through")
    @classmethod
    def _web_link(cls, v: str | None) -> str | None:
        # Every status page and report links records through it: a
        # "javascript:" or "data:" template ran in the reader's browser.
        if v is not None and urlsplit(v).scheme.lower() not in ("http", "https"):
            raise Hinted(
                f"must be an http:// or https:// URL (got a {urlsplit(v).scheme or 'relative'!r} "
                "link): every status page and report links records through it",
                "write e.g. reach_through: https://mivb1.example.net/admin/{form}?key={key}",
            )
        return v

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
        self._directory_checks()
        return self

    def _directory_checks(self) -> None:
        scheme = urlsplit(self.connection.url or "").scheme.lower()
        if self.type != "directory":
            if self.directory is not None:
                raise ValueError("only a directory element (type directory) has directory settings")
            if self.driver == "ldap":
                raise ValueError("the ldap driver serves directory elements only (type directory)")
            if scheme in ("ldap", "ldaps"):
                raise ValueError(
                    f"connection.url {self.connection.url!r} is an LDAP URL; only a directory "
                    "element (type directory, driver ldap) is reached over ldap:// or ldaps://"
                )
            return
        if self.driver != "ldap":
            raise ValueError("a directory element needs driver: ldap")
        if self.directory is None:
            raise ValueError(
                "a directory element needs directory settings: at least directory.base_dn "
                "(the OU MiCollab IDS reads users from)"
            )
        if scheme not in ("ldap", "ldaps"):
            raise ValueError(
                "a directory element needs connection.url ldap://host[:port] or ldaps://host[:port]"
            )
        if scheme == "ldaps" and self.directory.start_tls:
            raise ValueError(
                "directory.start_tls is for ldap:// URLs; an ldaps:// connection is TLS already"
            )
        if self.directory.bind_dn is not None and self.connection.token is None:
            raise ValueError(
                "directory.bind_dn needs its password as connection.token (a secret reference)"
            )
