"""The watcher's status server against clients that open connections and never
finish a request (slowloris): they may not take every file descriptor the
watcher has, and they are dropped, so the page answers again. A real watcher
process, 127.0.0.1 only."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from apply.helpers import wait_for, write_config
from provgit.watch.server import MAX_CONNECTIONS

from .helpers import Watch, start_in_sync


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _closed_by_peer(s: socket.socket) -> bool:
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset: closed too


def test_trickling_clients_are_capped_and_dropped_and_the_page_answers_again(
    tmp_path: Path, watches: list[Watch]
) -> None:
    config = write_config(tmp_path / "config", [], users=0, embedded_mcl=True)
    w = start_in_sync(config, watches)
    port = urlsplit(w.url).port
    assert port is not None
    before = _open_fds(w.proc.pid)
    clients: list[socket.socket] = []
    try:
        for _ in range(MAX_CONNECTIONS + 100):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /status.json HTTP/1.1\r\nHost: x\r\n")  # never finished
            s.setblocking(False)
            clients.append(s)
        # Beyond the cap, connections are closed at once: the watcher's own
        # descriptors (journal, elements, git) stay available.
        assert wait_for(lambda: _open_fds(w.proc.pid) <= before + MAX_CONNECTIONS + 5, 30)
        assert wait_for(lambda: sum(map(_closed_by_peer, clients)) >= 100, 30)
        # Those that were let in are dropped for sending no whole request.
        deadline = time.monotonic() + 120
        open_ones = list(clients)
        while open_ones and time.monotonic() < deadline:
            open_ones = [s for s in open_ones if not _closed_by_peer(s)]
            if open_ones:
                time.sleep(0.2)  # polling the sockets, bounded by the deadline
        assert open_ones == []
        code, _, _ = w.get("/healthz")
        assert code == 200
    finally:
        for s in clients:
            s.close()
