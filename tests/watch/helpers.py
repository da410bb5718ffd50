"""Helpers for the watch tests: a real `provgit watch` process, its logs and endpoints.

Every wait is bounded; every process started here is stopped (SIGTERM, then
SIGKILL) by the fixture that started it. Everything listens on 127.0.0.1 on
ports the processes pick themselves (`--port 0`, the URL is printed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apply.helpers import START_TIMEOUT

TOKEN = "watch-test-token-not-a-secret"
WATCH = [sys.executable, "-m", "provgit", "watch"]


@dataclass
class Watch:
    proc: subprocess.Popen[str]
    url: str
    logs: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, path: str, token: str | None = None) -> tuple[int, str, dict[str, str]]:
        request = urllib.request.Request(self.url + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), dict(e.headers)

    def status(self) -> dict[str, Any]:
        code, body, _ = self.get("/status.json")
        assert code == 200, body
        doc: dict[str, Any] = json.loads(body)
        return doc

    def post(self, path: str, token: str | None = None) -> tuple[int, str]:
        request = urllib.request.Request(self.url + path, data=b"{}", method="POST")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [line for line in self.logs if line.get("event") == name]

    def wait_log(
        self,
        name: str,
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
        timeout: float = 20.0,
        after: int = 0,
    ) -> dict[str, Any]:
        """The first log line `name` (from line index `after` on) matching `where`."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                for line in self.logs[after:]:
                    if line.get("event") == name and where(line):
                        return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {name!r} log line within {timeout} s; logs: {self.logs[-15:]}")

    def mark(self) -> int:
        with self._lock:
            return len(self.logs)

    def wait_idle_run(self, after: int, timeout: float = 20.0) -> dict[str, Any]:
        return self.wait_log("run_finished", timeout=timeout, after=after)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode


def start_watch(args: Sequence[str], env: dict[str, str] | None = None) -> Watch:
    full_env = {**os.environ, PROVGIT_WATCH_TOKEN: TOKEN, **(env or {})}
    full_env.pop("PROVGIT_STATE_DIR", None)
    proc = subprocess.Popen(
        [*WATCH, "--port", "0", "--log-format", "json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
    )
    found: list[str] = []
    ready = threading.Event()

    def read_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not ready.is_set() and '"event":"listening"' in line:
                # --log-format json: the "listening on" line is JSON too.
                found.append(json.loads(line)["url"])
                ready.set()
        ready.set()

    threading.Thread(target=read_out, daemon=True).start()
    watch = Watch(proc, "")

    def read_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = {"event": "raw", "line": line.rstrip()}
            with watch._lock:
                watch.logs.append(parsed)

    threading.Thread(target=read_err, daemon=True).start()
    ready.wait(START_TIMEOUT)
    if not found:
        proc.kill()
        proc.wait(timeout=5)
        raise RuntimeError(f"provgit watch did not start: {watch.logs[-10:]}")
    watch.url = found[0]
    return watch


PROVGIT_WATCH_TOKEN = "PROVGIT_WATCH_TOKEN"


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    p = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=30,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def commit_all(work: Path, message: str) -> str:
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    git(work, "push", "-q", "origin", "HEAD:main")
    return git(work, "rev-parse", "HEAD")


def make_repo(tmp: Path) -> tuple[Path, Path]:
    """A bare repository (what `watch --repo` follows) and a work tree pushing to it."""
    bare = tmp / "origin.git"
    git(tmp, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp / "work"
    git(tmp, "init", "-q", "-b", "main", str(work))
    git(work, "remote", "add", "origin", str(bare))
    return bare, work


def start_in_sync(config: Path, watches: list[Watch]) -> Watch:
    """A watcher on a directory (no resync, 50 ms debounce), once its first run is in sync."""
    w = start_watch([str(config), "--resync-seconds", "0", "--debounce-ms", "50"])
    watches.append(w)
    first = w.wait_log("run_finished", timeout=60)
    assert first["outcome"] == "Sync Completed", w.logs[-10:]
    return w
