"""The `ldap` driver's entries <-> records: what a read entry's attributes
(values as bytes, as libldap gives them) say as a `users` record, and the
attribute values a record writes, by the element's mapping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from provgit.drivers.ldap_csn import csn_revision
from provgit.drivers.ldap_write import MARKER_ATTRIBUTE, MARKER_BYTES, USERS
from provgit.model.directory import FIELDS
from provgit.records import MANAGED_BY, MANAGED_BY_VALUE, Fields
from provgit.wire.protocol import StoredRecord

# What `record` makes of the entryCSN and marker attributes (not user fields).
_CSN, _MARK = "\0csn", "\0mark"


class Codec:
    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping = dict(mapping)
        self.attributes = sorted(set(self.mapping.values()))
        # (field, attribute in lower case) of what an entry carries, for decoding
        # reads; and each attribute name as the server spells it -> its field.
        self._wanted = [(f, a.lower()) for f in FIELDS if (a := self.mapping.get(f))]
        self._names: dict[str, tuple[str, ...]] = {}

    def record(self, raw: Mapping[str, Sequence[bytes]]) -> StoredRecord | None:
        """A read entry's attributes (values as bytes, as libldap gives them) -> a record."""
        fields: Fields = {}
        csn: bytes | None = None
        owned = False
        names = self._names
        for attribute, values in raw.items():
            targets = names.get(attribute)
            if targets is None:  # first sight of this spelling of an attribute name
                targets = names[attribute] = self._fields_of(attribute.lower())
            if not values or not targets:
                continue
            if targets[0] == _CSN:
                csn = values[0]
            elif targets[0] == _MARK:
                owned = MARKER_BYTES in values
            else:
                text = values[0].decode("utf-8", "replace")
                for name in targets:
                    fields[name] = text
        key = fields.get("login_id")
        if not key or csn is None:
            return None
        if owned:
            fields[MANAGED_BY] = MANAGED_BY_VALUE
        return StoredRecord(USERS, str(key), fields, csn_revision(csn.decode("ascii", "replace")))

    def _fields_of(self, attribute: str) -> tuple[str, ...]:
        """An attribute (lower case) -> its fields (maybe 2), or (_CSN,), (_MARK,), ()."""
        if attribute == "entrycsn":
            return (_CSN,)
        if attribute == MARKER_ATTRIBUTE.lower():
            return (_MARK,)
        return tuple(f for f, a in self._wanted if a == attribute)

    def entry(self, key: str, fields: Fields) -> dict[str, list[str]]:
        values: dict[str, list[str]] = {}
        for f, a in self.mapping.items():
            v = fields.get(f)
            values[a] = [] if v is None or v == "" else [str(v)]
        values[self.mapping["login_id"]] = [key]
        return values

    def read_attrs(self) -> list[str]:
        return [*self.attributes, MARKER_ATTRIBUTE, "entryCSN", "entryUUID"]
