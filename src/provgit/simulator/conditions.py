"""The element API's conditional-request headers, read as RFC 9110 says.

A record's ETag is its revision, quoted and strong (`"12"`). `If-Match`
accepts what the OpenAPI document's pattern allows:

  `*`                  any current revision: the record must exist
  `"12"`               exactly that revision (the http driver sends this)
  `12`                 the same, unquoted (older clients); kept for them
  `W/"12"`             a weak tag: If-Match compares strongly, so it never
                       matches (RFC 9110 13.1.1) and the answer is 412
  `"11", "12"`         any of the listed tags

Anything else is a malformed header: 400, naming the header and the forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provgit.wire.codec import MAX_REVISION

# One entity tag: weak or strong, its opaque part a revision (digits).
_TAG = r'(?:W/)?"[0-9]*"'
# The pattern the OpenAPI document gives the header; keep the two identical.
IF_MATCH_PATTERN = rf"^(\*|[0-9]+|{_TAG}( *, *{_TAG})*)$"
_IF_MATCH = re.compile(IF_MATCH_PATTERN)
_ONE_TAG = re.compile(r'(W/)?"([0-9]*)"')


class MalformedHeader(ValueError):
    """A conditional header that no form of the API accepts."""


@dataclass(frozen=True)
class IfMatch:
    """A parsed If-Match: `any` (`*`), or the strong revisions it names.

    `exact` is the one revision when the header names exactly one strong tag:
    the store checks that inside its write transaction. Otherwise the server
    reads the record's revision first and decides with `matches`.
    """

    any: bool
    revisions: frozenset[int]

    @property
    def exact(self) -> int | None:
        if self.any or len(self.revisions) != 1:
            return None
        return next(iter(self.revisions))

    def matches(self, revision: int) -> bool:
        return self.any or revision in self.revisions


def parse_if_match(raw: str | None) -> IfMatch | None:
    """The If-Match header, or None when absent; MalformedHeader when malformed."""
    if raw is None:
        return None
    value = raw.strip()
    if not _IF_MATCH.match(value):
        raise MalformedHeader(
            'If-Match must be *, a record revision as an entity tag ("12"), or a list of '
            f'them ("11", "12"); got {_shown(value)}'
        )
    if value == "*":
        return IfMatch(any=True, revisions=frozenset())
    if value.isdigit():
        return IfMatch(any=False, revisions=_revisions([value]))
    strong = [digits for weak, digits in _ONE_TAG.findall(value) if not weak and digits]
    return IfMatch(any=False, revisions=_revisions(strong))


def _revisions(values: list[str]) -> frozenset[int]:
    # A revision no record can have (too large for the element) matches nothing.
    return frozenset(n for n in (int(v) for v in values) if n <= MAX_REVISION)


def create_only(raw: str | None) -> bool:
    """Whether If-None-Match asks for a create (`*`); MalformedHeader for other values.

    The API has no use for If-None-Match with a tag on a write, so only `*` is
    accepted (the OpenAPI document says `const: "*"`).
    """
    if raw is None:
        return False
    if raw.strip() != "*":
        raise MalformedHeader(f"If-None-Match accepts only * (create if absent); got {_shown(raw)}")
    return True


def _shown(value: str) -> str:
    """The header value in a message: bounded, printable."""
    text = value if len(value) <= 40 else value[:40] + "..."
    return repr(text)
