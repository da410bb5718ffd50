"""A fleet's POST /reconcile under attack: which network a git host's delivery
is for, proven with that network's own webhook secret before anything else.

The hook is served by the real status server (server.py `start`) on 127.0.0.1
and called over HTTP; what it hands on (`dispatch`: a run here or a relay to
the replica running the network) is recorded. The relay itself, between two
real replicas on PostgreSQL, is test_fleet_webhook.py's."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from provgit.api.fleet import FleetFileError, FleetNetwork, read_fleet
from provgit.api.watching import SecretRef
from provgit.watch.fleet_hook import MAX_BODY, FleetHook, parse_delivery, repo_key
from provgit.watch.logs import Log
from provgit.watch.server import start

TOKEN = "bearer-7b1e-not-a-real-token"
SECRET_A = "whsec-a-71c3-not-real"
SECRET_B = "whsec-b-22f0-not-real"
SECRETS = {"HOOK_A": SECRET_A, "HOOK_B": SECRET_B}


# ---- repository URLs ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/Acme/East.git",
        "https://github.com/acme/east",
        "https://github.com/acme/east/",
        "http://github.com/acme/east.git/",
        "https://user:tok@github.com/acme/east.git",
        "git@github.com:acme/east.git",
        "github.com:acme/east",
        "ssh://git@github.com:22/acme/east.git",
        "git://github.com/acme//east",
    ],
)
def test_a_repository_url_names_its_host_and_path_whatever_the_scheme_user_or_suffix(
    url: str,
) -> None:
    key = repo_key(url)
    assert key is not None and (key.host, key.path) == ("github.com", "acme/east")


@pytest.mark.parametrize(
    "path", ["/srv/git/east.git", "./east", "east.git", "../repos/east", "file:///srv/git/east.git"]
)
def test_a_local_path_repository_is_no_remote_deliverys(path: str) -> None:
    assert repo_key(path) is None


def test_a_delivery_names_its_repository_by_url_and_falls_back_on_its_full_name() -> None:
    github = parse_delivery(_github_push("https://github.com/acme/east.git"), gitlab=False)
    assert github is not None and github.ref == "refs/heads/main"
    assert github.is_for(repo_key("git@github.com:acme/east.git"))
    assert not github.is_for(repo_key("https://github.com/acme/west.git"))
    assert not github.is_for(repo_key("https://gitlab.com/acme/east.git"))  # another host
    assert not github.is_for(None)  # a local path
    named = parse_delivery(json.dumps({"repository": {"full_name": "Acme/East"}}).encode(), False)
    assert named is not None and named.is_for(repo_key("https://github.com/acme/east"))
    gitlab = parse_delivery(_gitlab_push("ssh://git@gl.example:2222/grp/sub/east.git"), True)
    assert gitlab is not None and gitlab.is_for(repo_key("https://gl.example/grp/sub/east"))
    for junk in (b"", b"[]", b"{", b'"x"', b"{}", json.dumps({"repository": 3}).encode()):
        assert parse_delivery(junk, gitlab=False) is None, junk


# ---- the fleet file -------------------------------------------------------------------


def test_webhook_secrets_are_references_per_network_or_fleet_wide(tmp_path: Path) -> None:
    file = tmp_path / "fleet.yaml"
    file.write_text(
        "version: 1\n"
        "journal: {url: 'postgresql://u@127.0.0.1/f'}\n"
        "webhook_secret: {env: HOOK_FLEET}\n"
        "networks:\n"
        "  - {name: east, repo: 'https://github.com/acme/east', webhook_secret: {env: HOOK_A}}\n"
        "  - {name: west, repo: 'git@github.com:acme/west.git'}\n"
    )
    fleet = read_fleet(file)
    assert [n.webhook_secret for n in fleet.networks] == [
        SecretRef(env="HOOK_A"),
        SecretRef(env="HOOK_FLEET"),
    ]


def test_a_webhook_secret_written_as_a_value_is_refused_with_where_and_never_echoed(
    tmp_path: Path,
) -> None:
    file = tmp_path / "fleet.yaml"
    file.write_text(
        "version: 1\n"
        "journal: {url: 'postgresql://u@127.0.0.1/f'}\n"
        "networks:\n"
        "  - name: east\n"
        "    repo: https://github.com/acme/east.git\n"
        f"    webhook_secret: {SECRET_A}\n"
    )
    with pytest.raises(FleetFileError) as e:
        read_fleet(file)
    assert len(e.value.problems) == 1, e.value.problems
    problem = e.value.problems[0]
    assert problem.startswith(f"{file}:6:5: networks/0/webhook_secret: ")
    assert "a reference, not a value" in problem and "{env: VARIABLE}" in problem
    assert SECRET_A not in problem


def test_a_pool_too_small_for_the_relays_listener_is_refused_saying_why(tmp_path: Path) -> None:
    file = tmp_path / "fleet.yaml"
    file.write_text(
        "version: 1\n"
        "journal: {url: 'postgresql://u@127.0.0.1/f', pool_size: 3}\n"
        "networks: [{name: east, repo: 'https://github.com/acme/east'}]\n"
    )
    with pytest.raises(FleetFileError) as e:
        read_fleet(file)
    assert e.value.problems == [
        f"{file}:2:46: journal/pool_size: 3 is less than the minimum of 4 (2 go to the "
        "leases, 1 listens for relayed webhooks, the rest to the journals)"
    ]


# ---- the endpoint ---------------------------------------------------------------------


class _Provider:
    """The status server's other routes are not under test here."""

    metrics: Any = None

    def __init__(self) -> None:
        self.triggered: list[str] = []

    def trigger(self, reason: str) -> None:
        self.triggered.append(reason)


NETWORKS = [
    FleetNetwork("east", "https://github.com/acme/east.git", "main", ".", None, {},
                 SecretRef(env="HOOK_A")),
    # The same repository as east, another directory of it, another secret.
    FleetNetwork("east-lab", "git@github.com:acme/east.git", "main", "lab", None, {},
                 SecretRef(env="HOOK_B")),
    FleetNetwork("west", "https://gitlab.example/ops/west", "prod", ".", None, {},
                 SecretRef(env="HOOK_B")),
    FleetNetwork("local", "/srv/git/east.git", "main", ".", None, {}, SecretRef(env="HOOK_A")),
    FleetNetwork("gone", "https://github.com/acme/gone.git", "main", ".", None, {},
                 SecretRef(env="HOOK_UNSET")),
]  # fmt: skip


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Hook]:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("HOOK_UNSET", raising=False)
    yield _Hook()


class _Hook:
    """The hook on a real server on 127.0.0.1; every call in its own event loop."""

    def __init__(self) -> None:
        self.out = io.StringIO()
        self.dispatched: list[str] = []
        self.provider = _Provider()

    def post(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        return asyncio.run(self._post(headers, body))

    async def _post(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        async def dispatch(name: str) -> dict[str, Any]:
            self.dispatched.append(name)
            return {"network": name, "here": False, "holder": "r2", "relayed": True}

        log = Log("json", stream=self.out)
        hook = FleetHook(NETWORKS, TOKEN, dispatch, self.provider.trigger, log)
        runner, url = await start(self.provider, "127.0.0.1", 0, TOKEN, reconcile=hook.handle)  # type: ignore[arg-type]
        try:
            async with (
                aiohttp.ClientSession() as s,
                s.post(url + "/reconcile", data=body, headers=headers) as r,
            ):
                return r.status, json.loads(await r.text())
        finally:
            await runner.cleanup()

    def logged(self) -> str:
        return self.out.getvalue()


def _github_push(clone_url: str, ref: str = "refs/heads/main", **repo: str) -> bytes:
    return json.dumps(
        {"ref": ref, "after": "1" * 40, "repository": {"clone_url": clone_url, **repo}}
    ).encode()


def _gitlab_push(ssh_url: str, ref: str = "refs/heads/main") -> bytes:
    return json.dumps(
        {"object_kind": "push", "ref": ref, "project": {"git_ssh_url": ssh_url}}
    ).encode()


def _signed(body: bytes, secret: str, event: str = "push") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": "sha256=" + digest, "X-GitHub-Event": event}


EAST = _github_push("https://github.com/acme/east.git")


def test_a_push_signed_with_a_networks_own_secret_starts_that_network_and_no_other(
    hook: _Hook,
) -> None:
    status, body = hook.post(_signed(EAST, SECRET_A), EAST)
    assert status == 202 and body["accepted"] is True
    assert [n["network"] for n in body["networks"]] == ["east"]
    assert body["networks"][0]["holder"] == "r2"
    # east-lab shares the repository: B's secret starts it, not east.
    status, body = hook.post(_signed(EAST, SECRET_B), EAST)
    assert status == 202 and [n["network"] for n in body["networks"]] == ["east-lab"]
    assert hook.dispatched == ["east", "east-lab"]
    gitlab = _gitlab_push("git@gitlab.example:ops/west.git", ref="refs/heads/prod")
    headers = {"X-Gitlab-Token": SECRET_B, "X-Gitlab-Event": "Push Hook"}
    status, body = hook.post(headers, gitlab)
    assert status == 202 and hook.dispatched[-1] == "west"
    assert hook.provider.triggered == []  # no network of this replica run wholesale
    assert SECRET_A not in hook.logged() and SECRET_B not in hook.logged()


def test_a_delivery_no_networks_secret_proves_gets_one_answer_whatever_the_reason(
    hook: _Hook,
) -> None:
    unknown = _github_push("https://github.com/acme/nowhere.git")
    attempts = {
        "wrong secret": (_signed(EAST, "guess"), EAST),
        "unknown repository, signed": (_signed(unknown, SECRET_A), unknown),
        "east's body, signature replayed on another repository's body": (
            {**_signed(EAST, SECRET_A), "X-GitHub-Event": "push"},
            _github_push("https://github.com/acme/west.git"),
        ),
        "another repository's body signed, east's URL": (
            _signed(_github_push("https://github.com/acme/west.git"), SECRET_A),
            EAST,
        ),
        "a network whose secret is not on this host": (
            _signed(_github_push("https://github.com/acme/gone.git"), ""),
            _github_push("https://github.com/acme/gone.git"),
        ),
        "a local-path network's URL": (
            _signed(_github_push("file:///srv/git/east.git"), SECRET_A),
            _github_push("file:///srv/git/east.git"),
        ),
        "not JSON": (_signed(b"not json", SECRET_A), b"not json"),
        "GitLab token of another network": (
            {"X-Gitlab-Token": SECRET_A, "X-Gitlab-Event": "Push Hook"},
            _gitlab_push("git@gitlab.example:ops/west.git", ref="refs/heads/prod"),
        ),
        "non-ASCII signature": (
            {"X-Hub-Signature-256": "sha256=é" + "0" * 60, "X-GitHub-Event": "push"},
            EAST,
        ),
        "non-ASCII token": (
            {"X-Gitlab-Token": "sécret", "X-Gitlab-Event": "Push Hook"},
            _gitlab_push("git@gitlab.example:ops/west.git"),
        ),
    }
    answers = {what: hook.post(h, b) for what, (h, b) in attempts.items()}
    first = answers["wrong secret"]
    assert first[0] == 404 and "east" not in json.dumps(first[1])
    assert {what: a for what, a in answers.items() if a != first} == {}
    assert hook.dispatched == [] and hook.provider.triggered == []
    log = hook.logged()
    assert SECRET_A not in log and SECRET_B not in log
    assert "webhook_secret_unusable" in log  # said to the operator, not the caller


def test_missing_headers_huge_bodies_other_events_and_other_branches_start_nothing(
    hook: _Hook,
) -> None:
    status, body = hook.post({"X-GitHub-Event": "push"}, EAST)
    assert status == 401 and "east" not in json.dumps(body)
    status, _ = hook.post({"Authorization": "Bearer guess"}, EAST)
    assert status == 401
    huge = b"{" + b" " * MAX_BODY + b"}"
    status, _ = hook.post(_signed(huge, SECRET_A), huge)
    assert status == 413
    # Proven, but not a push of a followed branch: answered, no run.
    status, body = hook.post(_signed(EAST, SECRET_A, event="ping"), EAST)
    assert (status, body) == (200, {"pong": True, "networks": ["east"]})
    status, body = hook.post(_signed(EAST, SECRET_A, event="issues"), EAST)
    assert status == 400 and "push" in body["error"]
    other = _github_push("https://github.com/acme/east.git", ref="refs/heads/feature")
    status, body = hook.post(_signed(other, SECRET_A), other)
    assert status == 200 and body["accepted"] is False and body["networks"] == []
    tag_of_main = _github_push("https://github.com/acme/east.git", ref="refs/heads/mainline")
    status, body = hook.post(_signed(tag_of_main, SECRET_A), tag_of_main)
    assert status == 200 and body["accepted"] is False
    assert hook.dispatched == [] and hook.provider.triggered == []


def test_the_bearer_token_runs_every_network_of_this_replica(hook: _Hook) -> None:
    status, _ = hook.post({"Authorization": f"Bearer {TOKEN}"}, b"")
    # A run now, ref moved or not (a git host's delivery only asks for a look).
    assert status == 202 and hook.provider.triggered == ["reconcile"]
    assert hook.dispatched == []
