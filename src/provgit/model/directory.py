"""A directory element's settings: the LDAP organisational unit MiCollab IDS reads
users from, and how provgit's user fields map to entry attributes.

The mapping tables live here (not in the driver) because targeting needs them
too: a directory element receives only the fields its mapping carries.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, StringConstraints, field_validator

from provgit.model.common import Model

# The user fields a directory entry can carry, in order.
DirectoryField = Literal[
    "login_id",
    "first_name",
    "last_name",
    "email",
    "department",
    "location",
    "primary_dn",
    "secondary_dn",
    "role",
    "host",
    "mobile",
    "language",
]
FIELDS: tuple[str, ...] = get_args(DirectoryField)
Preset = Literal["active_directory", "openldap"]
AttributeName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$")]

# MiCollab's documented default mapping ("Attribute Mapping Descriptions").
ACTIVE_DIRECTORY: dict[str, str | None] = {
    "login_id": "sAMAccountName",
    "first_name": "givenName",
    "last_name": "sn",
    "email": "mail",
    "department": "department",
    "location": "physicalDeliveryOfficeName",
    "primary_dn": "telephoneNumber",
    "secondary_dn": "otherTelephone",
    "role": "employeeType",
    "host": "ipPhone",
    "mobile": "mobile",
    "language": "preferredLanguage",
}
# Standard inetOrgPerson attributes: the AD ones inetOrgPerson lacks are not
# carried unless an override names an attribute the directory's schema has.
OPENLDAP: dict[str, str | None] = {
    **ACTIVE_DIRECTORY,
    "login_id": "uid",
    "department": "departmentNumber",
    "secondary_dn": None,
    "host": None,
}
PRESETS: dict[str, dict[str, str | None]] = {
    "active_directory": ACTIVE_DIRECTORY,
    "openldap": OPENLDAP,
}
PRESET_RDN = {"active_directory": "cn", "openldap": "uid"}
PRESET_CLASSES = {
    "active_directory": ["top", "person", "organizationalPerson", "user"],
    "openldap": ["inetOrgPerson"],
}


def carried(preset: str, overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    """field -> attribute for what an element carries (preset, then overrides)."""
    merged = dict(PRESETS[preset])
    merged.update(overrides or {})
    return {f: a for f, a in merged.items() if a}


class DirectorySettings(Model):
    """Where the users go in the directory and how their fields are named there."""

    base_dn: Annotated[
        str,
        StringConstraints(min_length=3, max_length=1024),
        Field(description="the OU provgit owns entries in, e.g. ou=people,dc=example,dc=com"),
    ]
    bind_dn: Annotated[str, StringConstraints(min_length=3, max_length=1024)] | None = None
    preset: Preset = "active_directory"
    # Per-field overrides: an attribute name, or null to stop carrying the field.
    attributes: dict[DirectoryField, AttributeName | None] = {}
    object_classes: Annotated[list[AttributeName], Field(min_length=1)] | None = None
    rdn_attribute: AttributeName | None = None
    start_tls: bool = False
    # PEM file of the CA(s) that signed the directory's certificate (default: the
    # system's); absolute or ~/, like a secret file: not a file of the config.
    ca_file: Annotated[str, StringConstraints(pattern=r"^(/|~/)")] | None = None

    @field_validator("base_dn", "bind_dn")
    @classmethod
    def _dn(cls, v: str | None) -> str | None:
        if v is not None and "=" not in v:
            raise ValueError(
                f"must be a distinguished name like ou=people,dc=example,dc=com (got {v!r})"
            )
        return v

    @field_validator("attributes")
    @classmethod
    def _login_carried(cls, v: dict[str, str | None]) -> dict[str, str | None]:
        if "login_id" in v and v["login_id"] is None:
            raise ValueError("login_id cannot be unmapped: it names the entry")
        return v

    def mapping(self) -> dict[str, str]:
        return carried(self.preset, {str(k): v for k, v in self.attributes.items()})
