"""The status page's resource list, kept from one report to the next.

At 100,000 users the page lists 2,000 resources with 8,731 reach-through
links: rendering them (some 30,000 escapes) was the largest part of writing
the reports after a reconcile with nothing to do, and the list is the same
from one such report to the next. The section is kept beside the report's
derived part (`memo/`), under the digest of what it is rendered from
(`status_html.resources_key`: every value the list shows, and the rendering
code), and reused only for a document whose digest is the same.

Sealed with the memo's key, as the derived part is (`report.derived_part`):
the section is HTML put into the page as it is, so one who can write memo/
but cannot read the state directory's key must not be able to put theirs
there. Best effort: a file that cannot be read or written is rendered again.
"""

from __future__ import annotations

import contextlib
import hmac
import marshal
from pathlib import Path

from provgit.fsutil import atomic_write, read_state_file
from provgit.render import status_html
from provgit.report.derived_part import sealing_key
from provgit.report.document import Document

FILE_NAME = "report-html.marshal"
_DOMAIN = b"provgit report resources html v1\0"
_MAC_BYTES = 32


def resources_html(doc: Document, state_dir: Path) -> str:
    """`status_html.resources_section(doc)`, read back when the last one kept
    was rendered from the same values; kept for the next report when the
    network is in sync (the state a run with nothing to do repeats)."""
    key = status_html.resources_key(doc)
    if key is None:
        return status_html.resources_section(doc)
    mac_key = sealing_key(state_dir)
    path = state_dir / "memo" / FILE_NAME
    if mac_key is not None and (kept := _load(path, mac_key, key)) is not None:
        return kept
    section = status_html.resources_section(doc)
    if mac_key is not None and doc.get("in_sync") and path.parent.is_dir():
        body = marshal.dumps((key, section), 2)
        with contextlib.suppress(OSError):
            # Not synced: a section lost to a power cut is rendered again.
            atomic_write(path, _mac(mac_key, body) + body, fsync=False)
    return section


def _mac(mac_key: bytes, body: bytes | memoryview) -> bytes:
    mac = hmac.new(mac_key, _DOMAIN, "sha256")
    mac.update(body)  # not joined: 2 MB at 100,000 users
    return mac.digest()


def _load(path: Path, mac_key: bytes, key: bytes) -> str | None:
    try:
        sealed = read_state_file(path)
    except OSError:
        return None
    if len(sealed) <= _MAC_BYTES:
        return None
    mac, body = sealed[:_MAC_BYTES], memoryview(sealed)[_MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(mac_key, body)):
        return None
    try:
        stored_key, section = marshal.loads(body)
    except (ValueError, TypeError, EOFError):
        return None
    if stored_key != key or not isinstance(section, str):
        return None
    return section
