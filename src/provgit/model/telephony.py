"""Classes of service, COR groups, departments, locations, templates, roles, users."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from provgit.model.common import (
    AsciiName,
    CorSet,
    CosSet,
    Identifier,
    Model,
    Name,
    OptionValue,
    SecretRef,
    Text,
    _not_blank,
)
from provgit.model.login import login_id_problem

# 100-110 are the call server's own classes of service.
COS_RESERVED = range(100, 111)


class CosOptions(TypedDict, total=False, extra_items=OptionValue):  # type: ignore[call-arg]
    """Class of service options. The yes/no ones of the call server's form are
    typed (so `toll_denied: no` is located at its key); any other option is
    true/false, a number or text that does not spell a YAML 1.1 boolean.
    (`extra_items` is PEP 728: pydantic reads it, mypy does not know it yet.)"""

    __pydantic_config__ = ConfigDict(extra="allow", strict=True)  # type: ignore[misc]
    toll_denied: bool
    call_forward_external: bool
    twinning: bool
    priority_dial_0: bool
    acd_agent: bool
    do_not_disturb: bool
    call_waiting: bool
    hot_desk: bool


class ClassOfService(Model):
    number: Annotated[int, Field(ge=1, le=110)]
    comment: Annotated[str, StringConstraints(max_length=15)] = ""
    options: CosOptions = {}

    @field_validator("number")
    @classmethod
    def _not_reserved(cls, v: int) -> int:
        if v in COS_RESERVED:
            raise ValueError(
                f"class of service {v} is reserved by the call server (100-110); use 1-99"
            )
        return v


class CorGroup(Model):
    number: Annotated[int, Field(ge=1, le=64)]
    comment: Annotated[str, StringConstraints(max_length=15)] = ""
    members: list[Annotated[int, Field(ge=1, le=64)]] = []


class Department(Model):
    name: AsciiName
    description: Text = ""


class Location(Model):
    name: AsciiName
    description: Text = ""


class TemplatePhone(Model):
    label: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    device_type: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    primary: bool = False


class Template(Model):
    name: Name
    description: Text = ""
    # The admin group it is shared with; none means every admin group.
    admin_group: Identifier | None = None
    phones: Annotated[list[TemplatePhone], Field(min_length=1, max_length=3)]
    cos: CosSet | None = None
    cor: CorSet | None = None

    @model_validator(mode="after")
    def _phones(self) -> Template:
        labels = [p.label for p in self.phones]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"phone labels must be unique within a template: {', '.join(dup)}")
        primaries = sum(p.primary for p in self.phones)
        if primaries != 1:
            raise ValueError(
                f"a template needs exactly one primary phone (found {primaries}); "
                "mark one with primary: true"
            )
        return self


# Roles allow 68 characters where other names allow 64; a wider Name cannot be
# narrowed-then-widened by stacking constraints (the inner 64 would still apply).
RoleName = Annotated[
    str, StringConstraints(min_length=1, max_length=68), AfterValidator(_not_blank)
]


class Role(Model):
    name: RoleName
    description: Text = ""
    template: Name


def _dn(v: str) -> str:
    # strip() leaves a character outside 0-9, * and # (and all after it) in place.
    if not (1 <= len(v) <= 7) or v.strip("0123456789*#"):
        raise ValueError(f"directory number {v!r} must be 1-7 characters of 0-9, * and #")
    return v


DirectoryNumber = Annotated[str, AfterValidator(_dn)]


class PhoneService(Model):
    dn: DirectoryNumber
    label: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    device_type: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    cos: CosSet | None = None
    cor: CorSet | None = None
    hot_desk_pin: SecretRef | None = None


class User(Model):
    login_id: Annotated[
        str,
        StringConstraints(min_length=2, max_length=113),
        Field(
            description="2-113 characters of ISO 8859-1: no spaces, '@', commas, control or "
            "invisible characters, '/', '\\' or '..'; unique ignoring case, and not like "
            "another login id or equal to another user's DN"
        ),
    ]
    first_name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    last_name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    directory_name: Annotated[str, StringConstraints(min_length=1, max_length=21)] | None = None
    department: AsciiName | None = None
    location: AsciiName | None = None
    role: RoleName | None = None
    template: Name | None = None
    # The call server that hosts the user's phones.
    host: Identifier
    voicemail_pin: SecretRef | None = None
    services: Annotated[list[PhoneService], Field(min_length=1, max_length=8)]

    @field_validator("login_id")
    @classmethod
    def _login(cls, v: str) -> str:
        problem = login_id_problem(v)
        if problem is not None:
            # The hint comes first: the message holds user text, and pydantic fills
            # the template's fields in order (a '{hint}' typed in a login stays).
            raise PydanticCustomError(
                "login_id", "{message}", {"hint": problem[1], "message": problem[0]}
            )
        return v

    @model_validator(mode="after")
    def _labels(self) -> User:
        if len(self.services) < 2:  # most users: one service, no two labels to compare
            return self
        labels = [s.label for s in self.services if s.label is not None]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"phone labels must be unique per user: {', '.join(dup)}")
        return self

    def effective_directory_name(self) -> str:
        return self.directory_name or f"{self.last_name}, {self.first_name}"
