"""What the `ldap` driver has seen of its OU, and refreshes against it.

A refresh must report deletions, and LDAP has no search for "entries gone":
they are found against what was seen. Two ways:

- the content synchronisation control (RFC 4533, `ldap_sync`) where the
  server offers it: with the cookie of the last refresh the server sends
  only the entries changed since and the entryUUIDs of the ones deleted, so a
  refresh costs O(changes). The first refresh after a full read has no cookie
  yet: it takes one with a names-only synchronisation (every entry's login
  and entryUUID, O(users) once) and finds what changed since the full read
  the way below; a write whose entry's entryUUID could not be read does the
  same at the next refresh, so every key seen has its entryUUID.
- otherwise (Active Directory, no syncprov, no python-ldap): entries with a
  `modifyTimestamp` since the last revision, and every user name in the OU
  (O(users)) against the names seen.

A cookie the server cannot continue from (e-syncRefreshRequired) is a full
read (FeedTooOldError), never "no changes".
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from provgit.drivers.ldap_csn import csn_revision
from provgit.drivers.ldap_csn import stamp as _stamp
from provgit.drivers.ldap_entries import Codec
from provgit.drivers.ldap_errors import text_of
from provgit.drivers.ldap_pages import Entry, SyncRefreshRequired
from provgit.drivers.ldap_write import USERS
from provgit.wire.protocol import Change, ChangeFeed, FeedTooOldError, StoredRecord

UUID = "entryUUID"


class SyncAnswer(Protocol):
    cookie: bytes | None
    changed: list[tuple[str, dict[str, list[bytes]], str]]
    deleted: set[str]
    present: set[str]
    complete_presence: bool


class Reader(Protocol):
    def every(self, flt: str, attrs: Sequence[str], size: int = 1000) -> Iterable[Entry]: ...

    def can_sync(self) -> bool: ...

    def sync(self, flt: str, attrs: Sequence[str], cookie: bytes | None) -> SyncAnswer: ...


class Seen:
    """key -> revision, DN and entryUUID of the entries last seen; None known: no full read yet."""

    def __init__(self, name: str, codec: Codec) -> None:
        self.name = name
        self.codec = codec
        self.known: dict[str, int] | None = None
        self.dns: dict[str, str] = {}
        self._pending: dict[str, int] = {}
        self._uuid_of: dict[str, str] = {}
        self._key_of: dict[str, str] = {}
        self.cookie: bytes | None = None
        self._cookie_at = 0  # the cookie's own change sequence number, as a revision
        # The revision the last refresh read up to: a refresh continues only from
        # there (None: from a full read), so two observers sharing this never
        # take each other's changes for none.
        self.chain: int | None = None

    # ---- what reads and writes tell it -------------------------------------------

    def records(self, entries: Iterable[Entry]) -> list[StoredRecord]:
        """Read entries -> records, remembering each one's DN (and entryUUID)."""
        out = []
        for dn, attrs in entries:
            r = self.codec.record(attrs)
            if r is not None:
                self.dns[r.key] = dn
                uuid = attrs.get(UUID)
                if uuid:
                    self._map(r.key, text_of(uuid[0]))
                out.append(r)
        return out

    def page(self, entries: Iterable[Entry], first: bool, last: bool) -> list[StoredRecord]:
        """A page of a full read -> its records; the known set is replaced at its end."""
        if first:
            self._pending = {}
            self.dns, self._uuid_of, self._key_of = {}, {}, {}
            self._take(None)  # taken again, after this read, by the next refresh
            self.chain = None
        records = self.records(entries)
        self._pending.update({r.key: r.revision for r in records})
        if last:
            self.known = dict(self._pending)
        return records

    def written(self, key: str, dn: str, revision: int | None, uuid: str | None) -> None:
        self.dns[key] = dn
        if revision is not None and self.known is not None:
            self.known[key] = revision
        if uuid:
            self._map(key, uuid)
        else:
            # A deletion of this entry could not be named by its entryUUID:
            # the next refresh takes a fresh cookie and lists the names.
            self.cookie = None

    def deleted(self, key: str) -> None:
        if self.known is not None:
            self.known.pop(key, None)
        self.dns.pop(key, None)
        self._unmap(key)

    def _map(self, key: str, uuid: str) -> None:
        uuid = uuid.lower()
        old = self._uuid_of.get(key)
        if old is not None and old != uuid:
            self._key_of.pop(old, None)
        self._uuid_of[key] = uuid
        self._key_of[uuid] = key

    def _unmap(self, key: str) -> None:
        uuid = self._uuid_of.pop(key, None)
        if uuid is not None and self._key_of.get(uuid) == key:
            del self._key_of[uuid]

    def _take(self, cookie: bytes | None) -> None:
        self.cookie = cookie
        self._cookie_at = _cookie_revision(cookie)

    # ---- refreshes ----------------------------------------------------------------

    def refresh(self, reader: Reader, login: str, since: int) -> ChangeFeed:
        if self.known is None:
            # Deletions are only found against what was seen: start from a full read.
            raise FeedTooOldError(f"element {self.name}: no full read yet in this process")
        if self.chain is not None and since != self.chain:
            raise FeedTooOldError(
                f"element {self.name}: this refresh does not continue the last one: full read"
            )
        if not reader.can_sync():
            feed = self._listed(reader, login, since, self._present_keys(reader, login))
        elif self.cookie is None:
            feed = self._bootstrap(reader, login, since)
        else:
            feed = self._synced(reader, login, since)
        self.chain = feed.revision
        return feed

    def _bootstrap(self, reader: Reader, login: str, since: int) -> ChangeFeed:
        """The first synchronisation: a cookie, every entry's login and entryUUID
        (names only), and what changed since the full read found as without one."""
        answer = reader.sync(f"({login}=*)", [login], None)
        present: set[str] = set()
        for _, attrs, uuid in answer.changed:
            values = {k.lower(): v for k, v in attrs.items()}.get(login.lower())
            if values:
                key = text_of(values[0])
                present.add(key)
                self._map(key, uuid)
        feed = self._listed(reader, login, since, present)
        self._take(answer.cookie)
        return feed

    def _synced(self, reader: Reader, login: str, since: int) -> ChangeFeed:
        assert self.known is not None
        answer = reader.sync(f"({login}=*)", self.codec.read_attrs(), self.cookie)
        changed: list[StoredRecord] = []
        gone: set[str] = set()
        for dn, attrs, uuid in answer.changed:
            r = self.codec.record(attrs)
            if r is None:
                continue
            before = self._key_of.get(uuid)
            if before is not None and before != r.key:
                gone.add(before)  # the login of this entry changed: the old key is gone
                self._unmap(before)
            self.dns[r.key] = dn
            self._map(r.key, uuid)
            changed.append(r)
        newer = max(since, self._cookie_at)
        if not answer.complete_presence and any(r.revision <= newer for r in changed):
            # Changes since the cookie are newer than it and than the last refresh:
            # entries as old as that are the whole content, which a server sends when
            # it does not take the cookie (naming no deletion): only a full read is sure.
            raise SyncRefreshRequired("the directory did not continue from the cookie")
        if answer.complete_presence:
            # The server named every entry still there (its present phase).
            there = answer.present | {uuid for _, _, uuid in answer.changed}
            gone |= {k for k in self.known if self._uuid_of.get(k) not in there}
        else:
            gone |= {k for u in answer.deleted if (k := self._key_of.get(u)) is not None}
        gone -= {r.key for r in changed}
        self._take(answer.cookie)
        return self._feed(changed, gone, since, self._cookie_at)

    def _listed(self, reader: Reader, login: str, since: int, present: set[str]) -> ChangeFeed:
        """Entries with a modifyTimestamp since `since`; deletions against `present`."""
        assert self.known is not None
        stamp = _stamp(since).strftime("%Y%m%d%H%M%SZ")
        flt = f"(&({login}=*)(modifyTimestamp>={stamp}))"
        changed = self.records(reader.every(flt, self.codec.read_attrs()))
        return self._feed(changed, set(self.known) - present, since)

    def _feed(
        self, changed: list[StoredRecord], gone: set[str], since: int, at: int = 0
    ) -> ChangeFeed:
        """The changes as a feed. A deletion leaves no entryCSN to read: it moves
        the feed's revision on to `at` (the cookie's), or just past `since`, so
        an element with only a deletion does not read as unchanged (drift)."""
        assert self.known is not None
        out: list[Change] = []
        top = since
        for r in changed:
            if r.revision <= since:
                continue
            top = max(top, r.revision)
            out.append(Change(r.revision, USERS, r.key, "put", r.fields, r.revision))
        if gone & self.known.keys():
            top = max(top, at, since + 1)
        for key in sorted(gone & self.known.keys()):
            out.append(Change(top, USERS, key, "delete", None, self.known[key]))
        for key in gone:
            self.deleted(key)
        self.known.update({c.key: c.revision for c in out if c.op == "put"})
        return ChangeFeed(out, top)

    @staticmethod
    def _present_keys(reader: Reader, login: str) -> set[str]:
        """Every user name in the OU (names only: cheap next to a full read)."""
        keys: set[str] = set()
        for _, attrs in reader.every(f"({login}=*)", [login]):
            values = _lowered(attrs).get(login.lower())
            if values:
                keys.add(text_of(values[0]))
        return keys


def _lowered(attrs: Mapping[str, list[bytes]]) -> dict[str, list[bytes]]:
    return {k.lower(): v for k, v in attrs.items()}


def _cookie_revision(cookie: bytes | None) -> int:
    """The oldest change sequence number an OpenLDAP cookie carries
    (`rid=000,csn=<CSN>[;<CSN>...]`) as a revision; 0 for other cookies."""
    found = re.search(rb"csn=([^,]+)", cookie or b"")
    revisions = []
    for csn in (found.group(1) if found else b"").split(b";"):
        with contextlib.suppress(ValueError):
            revisions.append(csn_revision(csn.decode("ascii", "replace")))
    return min(revisions, default=0)
