"""One HTTP request with a Host header of the test's choosing (DNS rebinding tests)."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit


def ask(
    url: str, path: str, host: str, method: str = "GET", token: str | None = None
) -> tuple[int, str]:
    """One request to the server at `url` with the Host header `host`."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host)
        if token is not None:
            conn.putheader("Authorization", f"Bearer {token}")
        body = b"{}" if method == "POST" else b""
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        answer = conn.getresponse()
        return answer.status, answer.read().decode()
    finally:
        conn.close()
