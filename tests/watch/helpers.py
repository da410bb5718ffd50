"""Helpers for the watch tests: a real `provgit watch` process, its logs and endpoints.

Every wait is bounded and waits for an event (a log line, an exit); every
process started here is stopped with SIGTERM by the fixture that started it,
which fails the test unless the watcher exits cleanly (SIGKILL only after
STOP_TIMEOUT, and that fails the test too). Everything listens on 127.0.0.1 on
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
from provgit.journal import Journal

TOKEN = "watch-test-token-not-a-secret"
WATCH = [sys.executable, "-m", "provgit", "watch"]


# How long a watcher may take to exit after SIGTERM: the default --stop-timeout
# (10 s for writes on the wire) with room for a machine shared by many tests.
STOP_TIMEOUT = 60.0
# A log wait's bound unless it says otherwise: a wait ends at its line, and a
# small network's run (a push, a fetch, a plan, the writes) took more than
# the former 20 s at load 30+ on 2 cores.
WAIT_TIMEOUT = 60.0


@dataclass
class Watch:
    proc: subprocess.Popen[str]
    url: str
    logs: list[dict[str, Any]] = field(default_factory=list)
    # Notified on every log line and when stderr closes: waits are on events.
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _readers: list[threading.Thread] = field(default_factory=list)
    _stderr_closed: bool = False
    # The shared journal it writes to (replicas): what a failed test prints.
    journal_url: str | None = None

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

    def add_log(self, line: dict[str, Any]) -> None:
        with self._changed:
            self.logs.append(line)
            self._changed.notify_all()

    def stderr_closed(self) -> None:
        with self._changed:
            self._stderr_closed = True
            self._changed.notify_all()

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._changed:
            return [line for line in self.logs if line.get("event") == name]

    def wait_log(
        self,
        name: str,
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
        timeout: float = WAIT_TIMEOUT,
        after: int = 0,
    ) -> dict[str, Any]:
        """The first log line `name` (from line index `after` on) matching `where`."""
        return self.wait_logs(name, 1, where, timeout, after)[0]

    def wait_logs(
        self,
        name: str,
        count: int,
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
        timeout: float = WAIT_TIMEOUT,
        after: int = 0,
    ) -> list[dict[str, Any]]:
        """The first `count` log lines `name` (from line index `after` on) matching `where`."""
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [
                    line for line in self.logs[after:] if line.get("event") == name and where(line)
                ]
                if len(found) >= count:
                    return found[:count]
                left = end - time.monotonic()
                if left <= 0 or self._stderr_closed:
                    break
                self._changed.wait(left)
            tail = self.logs[-15:]
        raise AssertionError(
            f"{len(found)} of {count} {name!r} log line(s) within {timeout} s; logs: {tail}"
        )

    def mark(self) -> int:
        with self._changed:
            return len(self.logs)

    def past(self, line: dict[str, Any]) -> int:
        """The mark just after `line` (a line wait_log returned): a wait from
        there sees only what was logged after it, never an earlier run's line."""
        with self._changed:
            return next(i for i, x in enumerate(self.logs) if x is line) + 1

    def wait_idle_run(self, after: int, timeout: float = WAIT_TIMEOUT) -> dict[str, Any]:
        return self.wait_log("run_finished", timeout=timeout, after=after)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send `sig` and wait for the exit code; a watcher still running after
        `timeout` is killed and the stop fails (AssertionError)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
                raise AssertionError(
                    f"provgit watch (pid {self.proc.pid}) did not exit within {timeout} s "
                    f"of signal {signal.Signals(sig).name}; killed. Logs: {self.logs[-15:]}"
                ) from None
        return self.proc.returncode

    def shutdown_problems(self, timeout: float = STOP_TIMEOUT) -> list[str]:
        """Stop the watcher with SIGTERM (if it still runs) and say what was not
        a clean exit: no exit within `timeout`, an exit code other than 0, a
        traceback or a crashed run in its log, no `watch_stopped` line, or a
        run left unfinished in the journal or interrupted while the watcher
        said it was idle."""
        try:
            self.stop(signal.SIGTERM, timeout)
        except AssertionError as e:
            return [str(e)]
        for t in self._readers:
            t.join(timeout=30)
        pid, code = self.proc.pid, self.proc.returncode
        problems = [] if code == 0 else [f"exit code {code}"]
        with self._changed:
            lines = list(self.logs)
        raw = "\n".join(str(line.get("line")) for line in lines if line.get("event") == "raw")
        if "Traceback" in raw:
            problems.append(f"a traceback on stderr:\n{raw[-3000:]}")
        crashed = [line for line in lines if line.get("event") == "run_crashed"]
        if crashed:
            problems.append(f"runs crashed: {crashed}")
        if not any(line.get("event") == "watch_stopped" for line in lines):
            problems.append("no watch_stopped log line")
        started = [line for line in lines if line.get("event") == "watch_started"]
        stopping = [line for line in lines if line.get("event") == "stopping"]
        was_running = any(line.get("running") for line in stopping)
        if started:
            with Journal.open(Path(started[0]["state_dir"])) as j:
                mine = [r for r in j.runs(1000) if r["pid"] == pid and r["command"] == "watch"]
            problems += [f"run {r['id']} left unfinished" for r in mine if r["finished"] is None]
            if not was_running:
                problems += [
                    f"run {r['id']} interrupted although the watcher was idle"
                    for r in mine
                    if r["outcome"] == "interrupted"
                ]
        return problems


def start_watch(args: Sequence[str], env: dict[str, str] | None = None) -> Watch:
    return _spawn([*WATCH, "--port", "0", "--log-format", "json", *args], env)


def start_fleet(args: Sequence[str], env: dict[str, str] | None = None) -> Watch:
    """A `provgit fleet watch` replica (its status server: the fleet's document)."""
    argv = [sys.executable, "-m", "provgit", "fleet", "watch", "--port", "0"]
    # A bound, not a figure: replicas are started two or three at once, each
    # importing the whole watcher, and at load 40 on 2 cores that passed 30 s.
    return _spawn([*argv, "--log-format", "json", *args], env, start_timeout=3 * START_TIMEOUT)


def start_watch_with_clock(clock_file: Path, config: Path) -> Watch:
    """A watcher process on `config` whose clock reads `clock_file` (support/watch_clock.py)."""
    return _spawn([sys.executable, str(WATCH_CLOCK), str(clock_file), str(config)], None)


WATCH_CLOCK = Path(__file__).resolve().parent.parent / "support" / "watch_clock.py"
WALL_CLOCK = Path(__file__).resolve().parent.parent / "support" / "replica_clock.py"


def start_watch_with_wall_clock(
    offset_file: Path, args: Sequence[str], env: dict[str, str] | None = None
) -> Watch:
    """`provgit watch ARGS` whose wall clock is the real one plus the offset in
    `offset_file` (support/replica_clock.py; `set_clock` writes it)."""
    argv = [sys.executable, str(WALL_CLOCK), str(offset_file), "watch", "--port", "0"]
    return _spawn([*argv, "--log-format", "json", *args], env)


def set_clock(clock_file: Path, now: float) -> None:
    """Set a clock_file watcher's "now" in one step. The watcher reads the
    file every 50 ms; a write_text in place (truncate, then write) can let it
    read an empty file, and the ValueError ends its timers task (nothing in
    timers.pending catches it): no load poll or release comes after. The
    likely cause of a call-load hold never lifting in one of two runs of
    tests/watch at load ~40."""
    part = clock_file.with_name(clock_file.name + ".part")
    part.write_text(repr(now))
    os.replace(part, clock_file)


def _spawn(
    argv: Sequence[str], env: dict[str, str] | None, start_timeout: float = START_TIMEOUT
) -> Watch:
    full_env = {**os.environ, PROVGIT_WATCH_TOKEN: TOKEN, **(env or {})}
    full_env.pop("PROVGIT_STATE_DIR", None)
    proc = subprocess.Popen(
        list(argv),
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

    out_reader = threading.Thread(target=read_out, daemon=True)
    out_reader.start()
    watch = Watch(proc, "")

    def read_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = {"event": "raw", "line": line.rstrip()}
            watch.add_log(parsed)
        watch.stderr_closed()

    err_reader = threading.Thread(target=read_err, daemon=True)
    err_reader.start()
    watch._readers += [out_reader, err_reader]
    ready.wait(start_timeout)
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
