"""POST /reconcile as a git host calls it: GitHub signs the raw body with the
webhook secret (X-Hub-Signature-256), GitLab sends the secret (X-Gitlab-Token).
A delivery that proves nothing (no header, a wrong signature, the signature of
another body, a wrong token, an unsupported event, a body over the cap or one
that never ends) starts no run, and the secret never reaches the log, the
status or the metrics. Real watcher and simulator processes on 127.0.0.1."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from apply.helpers import Sim, cli_process, write_config

from .helpers import TOKEN, Watch, start_watch

SECRET = "whsec-4f1c9a-not-a-real-secret"
PUSH = json.dumps({"ref": "refs/heads/main", "after": "0" * 40, "commits": []}).encode()


def _sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(w: Watch, headers: dict[str, str], body: bytes = PUSH) -> tuple[int, str]:
    url = urlsplit(w.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        conn.putrequest("POST", "/reconcile")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        for k, v in headers.items():
            conn.putheader(k, v.encode("utf-8"))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def _watcher(sims: list[Sim], tmp_path: Path, watches: list[Watch], **env: str) -> Watch:
    config = write_config(tmp_path / "config", sims, users=2)
    argv = [str(config), "--state-dir", str(tmp_path / "state"), "--resync-seconds", "0"]
    w = start_watch([*argv, "--debounce-ms", "50"], env={"PROVGIT_WEBHOOK_SECRET": SECRET, **env})
    watches.append(w)
    assert w.wait_log("run_finished", timeout=60)["outcome"] == "Sync Completed"
    return w


def _runs_until_change(w: Watch, sims: list[Sim], tmp_path: Path, mark: int) -> list[str]:
    """Save a config change, wait for its run; the reasons of every run since `mark`.
    A refused delivery that had asked for a run shows as `webhook` among them."""
    write_config(tmp_path / "config", sims, users=2, first_name="Zed")
    w.wait_log("run_finished", lambda e: "change" in e["reason"], after=mark, timeout=60)
    return [e["reason"] for e in w.logs[mark:] if e.get("event") == "run_finished"]


@pytest.mark.slow
def test_signed_github_push_and_gitlab_push_run_and_nothing_unproven_does(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    w = _watcher(sims, tmp_path, watches)
    mark = w.mark()
    refused = {
        "nothing": {},
        "wrong signature": {"X-Hub-Signature-256": _sign(PUSH, "guess"), "X-GitHub-Event": "push"},
        "another body's signature": {
            "X-Hub-Signature-256": _sign(b"{}"),
            "X-GitHub-Event": "push",
        },
        "sha1 signature": {"X-Hub-Signature-256": "sha1=" + "0" * 40, "X-GitHub-Event": "push"},
        "non-ascii signature": {"X-Hub-Signature-256": "sha256=é", "X-GitHub-Event": "push"},
        "empty gitlab token": {"X-Gitlab-Token": "", "X-Gitlab-Event": "Push Hook"},
        "wrong gitlab token": {"X-Gitlab-Token": SECRET[:-1], "X-Gitlab-Event": "Push Hook"},
        "secret as bearer": {"Authorization": f"Bearer {SECRET}"},
        "non-ascii bearer": {"Authorization": "Bearer ünïcode"},
        "token as gitlab token": {"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Push Hook"},
    }
    for name, headers in refused.items():
        code, body = _post(w, headers)
        assert code == 401, (name, code, body)
    # Authentic, but not a push: said (400), no run.
    assert _post(w, {"X-Hub-Signature-256": _sign(PUSH), "X-GitHub-Event": "issues"})[0] == 400
    assert _post(w, {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Note Hook"})[0] == 400
    # GitHub's ping when the hook is created: answered, no run.
    ping = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
    code, body = _post(w, {"X-Hub-Signature-256": _sign(ping), "X-GitHub-Event": "ping"}, ping)
    assert (code, json.loads(body)) == (200, {"pong": True})
    reasons = _runs_until_change(w, sims, tmp_path, mark)
    assert not [r for r in reasons if "webhook" in r], reasons

    for headers in (
        {"X-Hub-Signature-256": _sign(PUSH), "X-GitHub-Event": "push"},
        {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Push Hook"},
    ):
        mark = w.mark()
        assert _post(w, headers)[0] == 202
        w.wait_log("run_finished", lambda e: "webhook" in e["reason"], after=mark, timeout=60)

    for path in ("/status.json", "/metrics", "/"):
        assert SECRET not in w.get(path)[1]
    problems = w.shutdown_problems()
    assert problems == []
    assert SECRET not in json.dumps(w.logs)


@pytest.mark.slow
def test_webhook_body_over_the_cap_or_never_ending_is_refused_without_a_run(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    w = _watcher(sims, tmp_path, watches)
    url = urlsplit(w.url)
    mark = w.mark()
    head = (
        "POST /reconcile HTTP/1.1\r\nHost: 127.0.0.1\r\nX-GitHub-Event: push\r\n"
        f"X-Hub-Signature-256: {_sign(PUSH)}\r\n"
    )
    # Over the cap: refused from the Content-Length alone, nothing read.
    with socket.create_connection((url.hostname, url.port), timeout=30) as s:
        s.sendall(f"{head}Content-Length: {(25 << 20) + 1}\r\n\r\n".encode())
        assert s.recv(200).startswith(b"HTTP/1.1 413")
    # A chunked body that keeps coming past the cap is cut off at the cap.
    with socket.create_connection((url.hostname, url.port), timeout=60) as s:
        s.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"x" * (1 << 20)
        with contextlib.suppress(OSError):  # the server may close before all is sent
            for _ in range(30):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        assert s.recv(200).startswith(b"HTTP/1.1 413")
    # A body that stops arriving (slowloris on the body): answered 408 and closed.
    with socket.create_connection((url.hostname, url.port), timeout=60) as s:
        s.sendall(f"{head}Content-Length: {len(PUSH)}\r\n\r\n".encode() + PUSH[:10])
        assert s.recv(200).startswith(b"HTTP/1.1 408")
    reasons = _runs_until_change(w, sims, tmp_path, mark)
    assert not [r for r in reasons if "webhook" in r], reasons


def test_unreadable_or_empty_webhook_secret_file_refuses_to_start_naming_the_file(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "config", [], users=0)
    empty = tmp_path / "empty-secret"
    empty.write_text("\n" + SECRET + "\n")  # the first line is the secret: empty
    for secret_file, said in (
        (empty, "its first line is empty"),
        (tmp_path / "gone", "FileNotFoundError"),
    ):
        ran = cli_process(
            "watch", str(config), "--port", "0", "--webhook-secret-file", str(secret_file)
        )
        assert ran.code == 1, ran.out + ran.err
        assert f"webhook secret: cannot read secret file {secret_file}" in ran.err
        assert said in ran.err and SECRET not in ran.out + ran.err
        assert "listening" not in ran.out
