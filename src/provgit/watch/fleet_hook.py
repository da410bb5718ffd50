"""POST /reconcile on a fleet replica: which network a git host's delivery is for.

A fleet serves many repositories behind one URL, so a delivery names its
network by the repository it comes from (GitHub `repository.clone_url`,
`ssh_url`, `git_url`, `html_url`, else `full_name`; GitLab
`project.git_http_url`, `git_ssh_url`, `web_url`, else
`path_with_namespace`), matched to the networks whose `repo` is that
repository (`repo_key`: host and path, whatever the scheme, user, port,
`.git` suffix or trailing slash; a local path is never a remote delivery's).

Each matching network checks the delivery with ITS OWN webhook secret (the
signature of the raw body, or the GitLab token) before anything else is
looked at; a network whose secret does not check it is not touched. Only then
the event (a GitHub `ping` is answered, anything but a push starts nothing)
and the ref (a push to another branch starts no run). A delivery that no
network's secret proves (unknown repository, wrong secret, not JSON) gets one
and the same 404, so an unauthenticated caller learns nothing of which
networks or repositories the fleet has; the replica's log says which it was.

The bearer token starts every network this replica runs (as `provgit watch`).
The body is held (it must be parsed before the right secret is known), so it
is capped at MAX_BODY and at most READERS bodies are read at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from provgit.api.fleet import FleetNetwork
from provgit.api.watching import SecretUnavailable, resolve
from provgit.watch.logs import Log
from provgit.watch.webhook import (
    ASKED,
    GITHUB_RUN_EVENTS,
    GITLAB_RUN_EVENTS,
    Verdict,
    bearer_ok,
    read_body,
    same,
)

# A push payload lists at most 20 commits (GitHub): far under this.
MAX_BODY = 4 << 20
READERS = 8
UNKNOWN = Verdict(
    404,
    {
        "error": "no network of this fleet takes this delivery: check the webhook's "
        "repository and secret against the fleet file (the replica's log says which)"
    },
)

GITHUB_URLS = ("clone_url", "ssh_url", "git_url", "html_url")
GITLAB_URLS = ("git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url")
_SCP = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^/:\s]{2,}):(?P<path>[^/].*)$")


@dataclass(frozen=True)
class RepoKey:
    """A remote repository, as the git host knows it: host and path, case-folded."""

    host: str
    path: str


def repo_key(repo: str) -> RepoKey | None:
    """`repo` as host and path, or None for a local path (never a remote delivery's)."""
    repo = repo.strip()
    if "://" in repo:
        scheme, _, rest = repo.partition("://")
        if scheme.lower() == "file":
            return None
        netloc, _, path = rest.partition("/")
        host = netloc.rpartition("@")[2]
        host = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
    else:
        m = _SCP.match(repo)
        if m is None:
            return None
        host, path = m["host"], m["path"]
    path = re.sub(r"/+", "/", path).strip("/").removesuffix(".git").strip("/")
    if not host or not path:
        return None
    return RepoKey(host.casefold(), path.casefold())


@dataclass(frozen=True)
class Delivery:
    """What a delivery says of where it comes from."""

    keys: frozenset[RepoKey]
    paths: frozenset[str]  # full_name / path_with_namespace: used when no URL is given
    ref: str | None

    def is_for(self, key: RepoKey | None) -> bool:
        if key is None:
            return False
        if self.keys:
            return key in self.keys
        return key.path in self.paths


def parse_delivery(body: bytes, gitlab: bool) -> Delivery | None:
    """The repository and ref of a push (or ping) body; None if it names none."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    keys: set[RepoKey] = set()
    paths: set[str] = set()
    parts: list[tuple[str, tuple[str, ...], str]] = []
    if gitlab:
        parts.append(("project", GITLAB_URLS, "path_with_namespace"))
    parts.append(("repository", GITHUB_URLS + GITLAB_URLS + ("url",), "full_name"))
    for section, url_fields, name_field in parts:
        found = doc.get(section)
        if not isinstance(found, dict):
            continue
        for f in url_fields:
            value = found.get(f)
            key = repo_key(value) if isinstance(value, str) else None
            if key is not None and not key.host.startswith("api."):
                keys.add(key)
        name = found.get(name_field)
        if isinstance(name, str) and name.strip("/"):
            paths.add(name.strip("/").casefold())
    ref = doc.get("ref")
    if not keys and not paths:
        return None
    return Delivery(frozenset(keys), frozenset(paths), ref if isinstance(ref, str) else None)


def follows(network_ref: str, pushed: str | None) -> bool:
    """Does a push to `pushed` (refs/heads/main) change what `network_ref` (main) names?"""
    if pushed is None:
        return False
    return pushed in (network_ref, f"refs/heads/{network_ref}", f"refs/tags/{network_ref}")


# network name -> what the answer says of it (who runs it, started here or relayed).
Dispatch = Callable[[str], Awaitable[dict[str, Any]]]


class FleetHook:
    """The fleet's POST /reconcile (server.py calls `handle`)."""

    def __init__(
        self,
        networks: Sequence[FleetNetwork],
        token: str | None,
        dispatch: Dispatch,
        trigger_all: Callable[[str], None],
        log: Log,
    ) -> None:
        self.networks = list(networks)
        self.keys = {n.name: repo_key(n.repo) for n in networks}
        self.token = token
        self.dispatch = dispatch
        self.trigger_all = trigger_all
        self.log = log
        self.readers = asyncio.Semaphore(READERS)

    def check_secrets(self) -> None:
        """Say at start which networks cannot check a delivery (their secret is not here)."""
        for n in self.networks:
            self._secret(n)

    def _secret(self, n: FleetNetwork) -> str | None:
        if n.webhook_secret is None:
            return None
        try:
            return resolve(n.webhook_secret, for_element=False)
        except SecretUnavailable as e:
            self.log.error(
                "webhook_secret_unusable",
                network=n.name,
                secret=n.webhook_secret.describe(),
                error=str(e),
            )
            return None

    async def handle(self, request: web.Request) -> web.Response:
        found = await self.verdict(request)
        return web.json_response(found.body, status=found.status)

    async def verdict(self, request: web.Request) -> Verdict:
        if bearer_ok(request, self.token):
            self.trigger_all(ASKED)
            return Verdict(202, {"accepted": True}, run=True)
        gitlab = "X-Gitlab-Token" in request.headers
        if not gitlab and "X-Hub-Signature-256" not in request.headers:
            return Verdict(
                401, {"error": "a bearer token, a GitHub signature or a GitLab token is required"}
            )
        if self.readers.locked():
            return Verdict(503, {"error": "too many deliveries at once: send it again"})
        async with self.readers:
            body = await _read(request)
        if isinstance(body, Verdict):
            return body
        proven = self._proven(request, body, gitlab)
        if not proven:
            return UNKNOWN
        return await self._accepted(request, proven, body, gitlab)

    def _proven(self, request: web.Request, body: bytes, gitlab: bool) -> list[FleetNetwork]:
        """The networks this delivery is for whose own secret proves it."""
        delivery = parse_delivery(body, gitlab)
        candidates = (
            []
            if delivery is None
            else [n for n in self.networks if delivery.is_for(self.keys[n.name])]
        )
        proven = []
        for n in candidates:
            secret = self._secret(n)
            if secret is not None and _proves(request, body, gitlab, secret):
                proven.append(n)
        if not candidates:
            # The same work as a wrong secret: no timing tells an unknown repository.
            _proves(request, body, gitlab, "-")
        if not proven:
            keys = () if delivery is None else delivery.keys
            why = (
                "not a push body"
                if delivery is None
                else ("no network's repository" if not candidates else "the signature or token")
            )
            self.log.warning(
                "webhook_refused",
                why=why,
                candidates=[n.name for n in candidates],
                repositories=sorted(f"{k.host}/{k.path}" for k in keys)[:4],
            )
        return proven

    async def _accepted(
        self, request: web.Request, proven: list[FleetNetwork], body: bytes, gitlab: bool
    ) -> Verdict:
        names = [n.name for n in proven]
        event = request.headers.get("X-Gitlab-Event" if gitlab else "X-GitHub-Event", "")
        if not gitlab and event == "ping":
            return Verdict(200, {"pong": True, "networks": names})
        if event not in (GITLAB_RUN_EVENTS if gitlab else GITHUB_RUN_EVENTS):
            shown = event[:60] if event.isprintable() else repr(event[:60])
            choose = "Push events" if gitlab else "push"
            return Verdict(
                400, {"error": f"event {shown!r} does not start a run: send {choose} only"}
            )
        delivery = parse_delivery(body, gitlab)
        pushed = None if delivery is None else delivery.ref
        runs = [n for n in proven if follows(n.ref, pushed)]
        if not runs:
            shown = str(pushed)[:200]
            return Verdict(
                200,
                {
                    "accepted": False,
                    "networks": [],
                    "reason": f"no network follows {shown!r}: no run",
                },
            )
        answers = [await self.dispatch(n.name) for n in runs]
        self.log.info("webhook_accepted", networks=[a["network"] for a in answers])
        return Verdict(202, {"accepted": True, "networks": answers}, run=True)


def _proves(request: web.Request, body: bytes, gitlab: bool, secret: str) -> bool:
    if gitlab:
        return same(request.headers.get("X-Gitlab-Token", ""), secret)
    digest = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return same(request.headers.get("X-Hub-Signature-256", "").strip(), digest)


async def _read(request: web.Request) -> bytes | Verdict:
    chunks: list[bytes] = []
    refused = await read_body(request, chunks.append, MAX_BODY)
    return refused if refused is not None else b"".join(chunks)
