"""Element records -> what each element says about each resource.

`provgit.projection.project` turns one resource into records on several elements;
this turns each record back into the part of a resource it carries. Nothing is
merged here: a user seen on MiCollab and on two call servers gives three views,
and `pairing` decides which views are the same resource.

Views are plain data in the YAML shape of the resource (the fields a person
would write), with defaults left out, so two views compare with `==`.
Secrets come back as fingerprints only; a view records *that* a secret is set,
never anything derived from its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provgit import registry
from provgit.model.kinds import KINDS
from provgit.observe import Observation
from provgit.records import DIRECTORY, IVR, MICOLLAB, MIVB, Fields
from provgit.registry import SIMPLE_COLLECTIONS
from provgit.secrets import SENSITIVE

PERIODS = ("day", "night1", "night2")
COS_FIELDS = tuple(f"cos_{p}" for p in PERIODS)
COR_FIELDS = tuple(f"cor_{p}" for p in PERIODS)

# Record collection -> resource kind, for the kinds that map one record to one
# resource (from the registry). Users (three collections) have their own views below.
SIMPLE = SIMPLE_COLLECTIONS


@dataclass(frozen=True)
class Seen:
    """One element's view of one resource (any kind but users)."""

    kind: str
    key: str
    element: str
    element_type: str
    collection: str
    data: dict[str, Any]
    # Facts that are not resource fields but matter to the analysis
    # (a prompt's audio hash and size).
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserView:
    """A user as one element holds it: the MiCollab user, or a call server's phone record."""

    element: str
    element_type: str
    login_id: str
    # User data present on this element (MiCollab: also email, role, template, host).
    fields: dict[str, Any]
    # dn, label, device_type; on a call server also cos/cor ({day, night1, night2})
    # and hot_desk_pin: True when the element holds one.
    services: tuple[dict[str, Any], ...]
    has_voicemail_pin: bool = False

    @property
    def dns(self) -> tuple[str, ...]:
        return tuple(str(s["dn"]) for s in self.services if s.get("dn") is not None)


@dataclass(frozen=True)
class RemoteEntry:
    """A remote directory entry: a DN hosted elsewhere, as a call server lists it."""

    element: str
    dn: str
    login_id: str | None
    host: str | None


@dataclass
class ElementViews:
    element: str
    element_type: str
    seen: list[Seen] = field(default_factory=list)
    users: list[UserView] = field(default_factory=list)
    remote: list[RemoteEntry] = field(default_factory=list)
    # Records that could not be read back into a resource, with why.
    skipped: list[tuple[str, str, str]] = field(default_factory=list)


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and SENSITIVE in value


def minimal(data: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Drop what a person would not write: nulls, empty text/lists/maps, defaults."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if v is None or v == "" or v == [] or v == {}:
            continue
        if defaults is not None and k in defaults and defaults[k] == v:
            continue
        out[k] = v
    return out


def period_set(values: Mapping[str, Any]) -> dict[str, int] | None:
    """{day, night1, night2} as a CosSet/CorSet is written: later periods only when they differ."""
    nums: list[int] = []
    for p in PERIODS:
        v = values.get(p)
        if v is None:
            break
        try:
            nums.append(int(v))
        except (TypeError, ValueError):
            return None
    if not nums:
        return None
    out = {"day": nums[0]}
    if len(nums) > 1 and nums[1] != nums[0]:
        out["night1"] = nums[1]
    if len(nums) > 2 and nums[2] != nums[1]:
        out["night2"] = nums[2]
    return out


def full_periods(fields: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, int] | None:
    """cos_day/cos_night1/cos_night2 (or cor_…) of a phone record -> {day, night1, night2}."""
    if all(fields.get(n) is None for n in names):
        return None
    out: dict[str, int] = {}
    for p, n in zip(PERIODS, names, strict=True):
        v = fields.get(n)
        if v is None:
            continue
        try:
            out[p] = int(v)
        except (TypeError, ValueError):
            continue
    return out or None


def expand(short: Mapping[str, Any] | None) -> dict[str, int] | None:
    """A written CosSet/CorSet -> all three periods, as the projection fills them."""
    if not short or "day" not in short:
        return None
    day = int(short["day"])
    n1 = int(short["night1"]) if short.get("night1") is not None else day
    n2 = int(short["night2"]) if short.get("night2") is not None else n1
    return {"day": day, "night1": n1, "night2": n2}


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


def _steps(steps: Any) -> list[dict[str, Any]]:
    if not isinstance(steps, list):
        return []
    return [minimal(s) for s in steps if isinstance(s, dict)]


# The collections `_simple` reads back itself; any other one-record-each
# collection is a kind registered at run time, read back by its entry.
_BUILTIN_SIMPLE = frozenset(
    (
        "cos",
        "cor_groups",
        "departments",
        "locations",
        "templates",
        "roles",
        "media_servers",
        "prompts",
        "subroutines",
        "workflows",
    )
)


def _registered(collection: str, key: str, f: Fields) -> dict[str, Any]:
    entry = registry.entry_of(SIMPLE[collection])
    data = {k: v for k, v in f.items() if not k.startswith("_")}
    if entry is not None and entry.reverse is not None:
        return entry.reverse(key, data)
    return data


def _simple(collection: str, key: str, f: Fields) -> tuple[dict[str, Any], dict[str, Any]]:
    """One record of a one-to-one collection -> (resource data, meta)."""
    if collection not in _BUILTIN_SIMPLE:
        return minimal(_registered(collection, key, f)), {}
    if collection in ("cos", "cor_groups"):
        number = f.get("number", key)
        data: dict[str, Any] = {"number": int(number), "comment": f.get("comment")}
        if collection == "cos":
            data["options"] = dict(f.get("options") or {})
        else:
            data["members"] = [int(m) for m in f.get("members") or []]
        return minimal(data), {}
    if collection in ("departments", "locations"):
        return minimal({"name": f.get("name", key), "description": f.get("description")}), {}
    if collection == "templates":
        phones = []
        for p in f.get("phones") or []:
            if isinstance(p, dict):
                phones.append(minimal(p, {"primary": False}))
        data = {
            "name": f.get("name", key),
            "description": f.get("description"),
            "phones": phones,
            "cos": period_set(f.get("cos") or {}),
            "cor": period_set(f.get("cor") or {}),
        }
        return minimal(data), {}
    if collection == "roles":
        data = {
            "name": f.get("name", key),
            "description": f.get("description"),
            "template": f.get("template"),
        }
        return minimal(data), {}
    if collection == "media_servers":
        data = {k: v for k, v in f.items() if not k.startswith("_")}
        data.setdefault("name", key)
        return minimal(data, {"media_type": "voice", "port": 5060}), {}
    if collection == "prompts":
        name, _, language = key.partition(":")
        data = {
            "name": f.get("name", name),
            "language": f.get("language", language or "en-US"),
            "file": f.get("file"),
            "description": f.get("description"),
        }
        meta = {"audio_sha256": f.get("audio_sha256"), "audio_bytes": f.get("audio_bytes")}
        return minimal(data), meta
    # subroutines, workflows
    data = {
        "name": f.get("name", key),
        "media_type": f.get("media_type"),
        "description": f.get("description"),
        "steps": _steps(f.get("steps")),
    }
    if collection == "workflows":
        data["media_servers"] = list(f.get("media_servers") or [])
        # Field order as people write it: servers before steps.
        data["steps"] = data.pop("steps")
    return minimal(data, {"media_type": "voice"}), {}


def _user_view(element: str, element_type: str, key: str, f: Fields) -> UserView:
    login = str(f.get("login_id") or key)
    user_fields = {
        k: f.get(k) for k in ("first_name", "last_name", "directory_name", "department", "location")
    }
    services: list[dict[str, Any]] = []
    for s in f.get("services") or []:
        if not isinstance(s, dict):
            continue
        svc: dict[str, Any] = {
            "dn": _str(s.get("dn")),
            "label": s.get("label"),
            "device_type": s.get("device_type"),
        }
        if element_type == MIVB:
            svc["cos"] = full_periods(s, COS_FIELDS)
            svc["cor"] = full_periods(s, COR_FIELDS)
            svc["hot_desk_pin"] = is_secret(s.get("hot_desk_pin")) or None
        services.append(minimal(svc))
    if element_type == MICOLLAB:
        for k in ("email", "role", "template", "host"):
            user_fields[k] = f.get(k)
    return UserView(
        element,
        element_type,
        login,
        minimal(user_fields),
        tuple(services),
        has_voicemail_pin=is_secret(f.get("voicemail_pin")),
    )


# What a directory entry says about its user (the fields its mapping carries).
DIRECTORY_USER = ("first_name", "last_name", "email", "department", "location", "role", "host")


def _directory_view(element: str, key: str, f: Fields) -> UserView:
    """A directory entry as MiCollab IDS reads it: user data, the role from
    `employeeType`, the host from `ipPhone`, and its DNs (primary, secondary)
    as services whose labels and device types the role's template gives."""
    dns = [f.get("primary_dn"), f.get("secondary_dn")]
    services = tuple({"dn": str(d)} for d in dns if d is not None and str(d) != "")
    fields = minimal({k: f.get(k) for k in DIRECTORY_USER})
    return UserView(element, DIRECTORY, str(f.get("login_id") or key), fields, services)


def _named_by(view: UserView) -> list[Seen]:
    """The departments and locations a directory entry names: a name is all a
    directory knows of them, so they count only where nothing else has them."""
    out = []
    for kind, name in (
        ("departments", view.fields.get("department")),
        ("locations", view.fields.get("location")),
    ):
        if name:
            data = {"name": str(name)}
            out.append(Seen(kind, str(name), view.element, DIRECTORY, "users", data))
    return out


def reverse_element(obs: Observation, element_type: str) -> ElementViews:
    """Every record one element holds -> views, per resource."""
    out = ElementViews(obs.element, element_type)
    named: set[tuple[str, str]] = set()  # departments and locations a directory names
    for collection, records in sorted(obs.records.items()):
        for key, stored in sorted(records.items()):
            f = stored.fields
            try:
                if collection == "users" and element_type in (MICOLLAB, MIVB):
                    out.users.append(_user_view(obs.element, element_type, key, f))
                elif collection == "users" and element_type == DIRECTORY:
                    view = _directory_view(obs.element, key, f)
                    out.users.append(view)
                    for seen in _named_by(view):
                        if (seen.kind, seen.key) not in named:
                            named.add((seen.kind, seen.key))
                            out.seen.append(seen)
                elif collection == "remote_directory":
                    out.remote.append(
                        RemoteEntry(
                            obs.element,
                            str(f.get("dn", key)),
                            _str(f.get("login_id")),
                            _str(f.get("host")),
                        )
                    )
                elif collection in SIMPLE:
                    kind = SIMPLE[collection]
                    data, meta = _simple(collection, key, f)
                    rkey = KINDS[kind].key(_Keyed(data))
                    out.seen.append(
                        Seen(kind, rkey, obs.element, element_type, collection, data, meta)
                    )
                else:
                    out.skipped.append((collection, key, "not a collection provgit manages"))
            except (TypeError, ValueError, KeyError) as e:
                # A record the element holds in a shape provgit never writes:
                # say so rather than guess.
                out.skipped.append((collection, key, f"unreadable record: {e}"))
    return out


class _Keyed:
    """Lets a `Kind.key` function (written for models) read a view's dict."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        if name == "language":
            return self._data.get("language", "en-US")
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None


def reverse(
    observed: Mapping[str, Observation], element_types: Mapping[str, str]
) -> dict[str, ElementViews]:
    """Views from every element that could be read, in config order."""
    out: dict[str, ElementViews] = {}
    for name, etype in element_types.items():
        obs = observed.get(name)
        if obs is None or not obs.ok or etype not in (MICOLLAB, MIVB, IVR, DIRECTORY):
            continue
        out[name] = reverse_element(obs, etype)
    return out
