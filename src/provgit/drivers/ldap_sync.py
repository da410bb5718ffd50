"""The `ldap` driver's cheap refresh: the content synchronisation control
(RFC 4533, refreshOnly) through python-ldap, where the server offers it.

With the cookie of the previous refresh the server sends only what changed
since: the entries added or modified (with the attributes asked for), and
the deleted ones, either one by one (their entryUUID) or, when it cannot
say which were deleted (no session log, a restart), as a "present" phase
that names every entry still there: then whatever it does not name is gone.
Either way the answer is exact; a refresh without a usable cookie is never
taken for "no changes": a server that refuses the cookie
(e-syncRefreshRequired) makes the driver start again from a full read.

OpenLDAP's slapd offers it with the `syncprov` overlay (its session log lets
it name deletions without the present phase). Active Directory has DirSync
instead, not done here: the driver falls back to `modifyTimestamp` and the
OU's user names there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ldap
from ldap.syncrepl import (
    SyncDoneControl,
    SyncInfoMessage,
    SyncRequestControl,
    SyncStateControl,
)

from provgit.drivers.ldap_pages import MAX_ANSWER_BYTES, Budget, SyncRefreshRequired

SYNC_OID = "1.3.6.1.4.1.4203.1.9.1.1"  # the root DSE's supportedControl value
REFRESH_REQUIRED = 4096  # e-syncRefreshRequired: the cookie is no good, start over


@dataclass
class SyncResult:
    """What one refreshOnly search said. `changed`: entries added or modified
    since the cookie (dn, attributes, entryUUID). `deleted`: entryUUIDs gone.
    `present`: entryUUIDs named as still there; when `complete_presence`, the
    server went through the present phase and every entry it did not name
    (in `present` or `changed`) is gone."""

    cookie: bytes | None
    changed: list[tuple[str, dict[str, list[bytes]], str]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    present: set[str] = field(default_factory=set)
    complete_presence: bool = False


def offered(conn: Any, timeout: int) -> bool:
    """Whether the server lists the content synchronisation control in its root DSE."""
    found = conn.search_st("", ldap.SCOPE_BASE, "(objectClass=*)", ["supportedControl"], 0, timeout)
    for _, attrs in found:
        values = {k.lower(): v for k, v in (attrs or {}).items()}.get("supportedcontrol", [])
        if SYNC_OID.encode() in values:
            return True
    return False


def refresh(
    conn: Any,
    base: str,
    flt: str,
    attrs: Sequence[str],
    cookie: bytes | None,
    timeout: int,
    budget: Budget | None = None,
) -> SyncResult:
    """One refreshOnly search of the entries one level under `base`, its
    answer counted against `budget` as it arrives (AnswerTooLarge past it)."""
    budget = budget or Budget("", None, MAX_ANSWER_BYTES)
    control = SyncRequestControl(criticality=1, cookie=cookie, mode="refreshOnly")
    try:
        msgid = conn.search_ext(
            base, ldap.SCOPE_ONELEVEL, flt, list(attrs), serverctrls=[control], timeout=timeout
        )
    except ldap.LDAPError as e:
        _raise_refresh_required(e)
        raise
    out = SyncResult(cookie)
    while True:
        try:
            kind, msgs, _, ctrls, _, _ = conn.result4(
                msgid, all=0, timeout=timeout, add_intermediates=1, add_ctrls=1
            )
        except ldap.LDAPError as e:
            _raise_refresh_required(e)
            raise
        if kind == ldap.RES_SEARCH_RESULT:
            done = [c for c in ctrls if isinstance(c, SyncDoneControl)]
            if not done:  # not a synchronisation after all: nothing here can be trusted
                raise SyncRefreshRequired("the directory answered without a sync done control")
            if done[0].cookie is not None:
                out.cookie = _bytes(done[0].cookie)
            if not done[0].refreshDeletes:
                # The server went through the present phase: what it did not name is gone.
                out.complete_presence = True
            return out
        if kind == ldap.RES_SEARCH_ENTRY:
            for dn, entry_attrs, entry_ctrls in msgs:
                budget.take(dn or "", entry_attrs or {})
                _entry(out, dn, entry_attrs, entry_ctrls)
        elif kind == ldap.RES_INTERMEDIATE:
            for name, value, _ in msgs:
                budget.over(len(value or b""))
                if name == SyncInfoMessage.responseName:
                    _info(out, SyncInfoMessage(value))


def _entry(out: SyncResult, dn: str, attrs: dict[str, list[bytes]], ctrls: list[Any]) -> None:
    for c in ctrls:
        if not isinstance(c, SyncStateControl):
            continue
        uuid = str(c.entryUUID).lower()
        if c.state == "present":
            out.present.add(uuid)
        elif c.state == "delete":
            out.deleted.add(uuid)
        else:  # add, modify
            out.changed.append((dn, attrs, uuid))
        if c.cookie is not None:
            out.cookie = _bytes(c.cookie)


def _info(out: SyncResult, message: SyncInfoMessage) -> None:
    if message.newcookie is not None:
        out.cookie = _bytes(message.newcookie)
        return
    for phase in (message.refreshPresent, message.refreshDelete):
        if phase is not None and phase.get("cookie") is not None:
            out.cookie = _bytes(phase["cookie"])
    ids = message.syncIdSet
    if ids is not None:
        uuids = {str(u).lower() for u in ids["syncUUIDs"]}
        if ids["refreshDeletes"]:
            out.deleted |= uuids
        else:
            out.present |= uuids
        if ids.get("cookie") is not None:
            out.cookie = _bytes(ids["cookie"])


def _bytes(cookie: bytes | str | None) -> bytes | None:
    """python-ldap hands cookies back as text or bytes, by message type."""
    return cookie.encode("utf-8", "surrogateescape") if isinstance(cookie, str) else cookie


def _raise_refresh_required(e: ldap.LDAPError) -> None:
    info = e.args[0] if e.args and isinstance(e.args[0], dict) else {}
    if info.get("result") == REFRESH_REQUIRED:
        raise SyncRefreshRequired(str(info.get("info") or "e-syncRefreshRequired")) from None
