"""Who may start a run through POST /reconcile, and what a git host's delivery says.

Three ways in, each compared in constant time:

- `Authorization: Bearer <token>` (the watcher's token, scripts and CI);
- GitHub: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw
  body keyed with the webhook secret; `X-GitHub-Event` `push` starts a run,
  `ping` (sent when the hook is created) is answered without one;
- GitLab: `X-Gitlab-Token: <webhook secret>`; `X-Gitlab-Event: Push Hook`.

Anything else is 401 and starts nothing. The body is read only to check a
GitHub signature, streamed into the HMAC (never held whole), at most
MAX_BODY bytes and BODY_SECONDS long: an unauthenticated sender must not
hold memory or a connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# GitHub caps a delivery at 25 MB; a push payload is far smaller.
MAX_BODY = 25 << 20
BODY_SECONDS = 10.0
GITHUB_RUN_EVENTS = frozenset({"push"})
GITLAB_RUN_EVENTS = frozenset({"Push Hook"})
# The run reasons: a git host's push (or one relayed by another replica of a
# fleet) only says the ref may have moved, and a proven delivery can be sent
# again and again (a signature has no nonce), so a watcher following git first
# looks whether the ref moved past the applied commit (loop.py); the bearer
# token is someone asking for a run now.
DELIVERY = "webhook"
ASKED = "reconcile"


@dataclass(frozen=True)
class Verdict:
    """The answer to a delivery, and whether it starts a run."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    run: bool = False
    reason: str = DELIVERY


def same(given: str, expected: str) -> bool:
    """Constant-time equality of header text; bytes, so non-ASCII text is just unequal."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


def bearer_ok(request: web.Request, token: str | None) -> bool:
    if not token:
        return False
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and same(value.strip(), token)


def _denied(message: str) -> Verdict:
    return Verdict(401, {"error": message})


async def read_body(
    request: web.Request, take: Callable[[bytes], object], most: int = MAX_BODY
) -> Verdict | None:
    """Stream the body into `take`, at most `most` bytes within BODY_SECONDS
    (a slow or endless sender is cut off); the refusal, or None once read."""
    if (request.content_length or 0) > most:
        return Verdict(413, {"error": f"the body is over {most} bytes"})
    read = 0
    try:
        async with asyncio.timeout(BODY_SECONDS):
            async for chunk in request.content.iter_chunked(1 << 16):
                read += len(chunk)
                if read > most:
                    return Verdict(413, {"error": f"the body is over {most} bytes"})
                take(chunk)
    except TimeoutError:
        return Verdict(408, {"error": f"the body took over {BODY_SECONDS:g} s to arrive"})
    return None


async def _body_digest(request: web.Request, secret: str) -> str | Verdict:
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    refused = await read_body(request, mac.update)
    return refused if refused is not None else "sha256=" + mac.hexdigest()


async def _github(request: web.Request, secret: str) -> Verdict:
    digest = await _body_digest(request, secret)
    if isinstance(digest, Verdict):
        return digest
    if not same(request.headers.get("X-Hub-Signature-256", "").strip(), digest):
        return _denied("X-Hub-Signature-256 does not match the body and the webhook secret")
    event = request.headers.get("X-GitHub-Event", "")
    if event == "ping":
        return Verdict(200, {"pong": True})
    if event not in GITHUB_RUN_EVENTS:
        return _ignored(event, "push")
    return Verdict(202, {"accepted": True}, run=True)


def _gitlab(request: web.Request, secret: str) -> Verdict:
    if not same(request.headers.get("X-Gitlab-Token", ""), secret):
        return _denied("X-Gitlab-Token is not the webhook secret")
    event = request.headers.get("X-Gitlab-Event", "")
    if event not in GITLAB_RUN_EVENTS:
        return _ignored(event, "Push events")
    return Verdict(202, {"accepted": True}, run=True)


def _ignored(event: str, choose: str) -> Verdict:
    # Authentic, but not a change of the branch: say so (the host shows it), no run.
    shown = event[:60] if event.isprintable() else repr(event[:60])
    return Verdict(
        400,
        {"error": f"event {shown!r} does not start a run: send {choose} only"},
    )


async def verdict(request: web.Request, token: str | None, secret: str | None) -> Verdict:
    """Bearer token, GitHub signature or GitLab token; else 401."""
    if not token and not secret:
        return Verdict(
            403,
            {
                "error": "POST /reconcile is disabled: start the watcher with its token "
                "variable (--token-env) or a webhook secret (--webhook-secret-env) set"
            },
        )
    if bearer_ok(request, token):
        return Verdict(202, {"accepted": True}, run=True, reason=ASKED)
    if secret and "X-Hub-Signature-256" in request.headers:
        return await _github(request, secret)
    if secret and "X-Gitlab-Token" in request.headers:
        return _gitlab(request, secret)
    return _denied("a bearer token, a GitHub signature or a GitLab token is required")
