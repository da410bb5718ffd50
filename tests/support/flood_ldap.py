"""A hostile LDAP server on 127.0.0.1 that ignores the paged results control:
it takes any simple bind, answers a base search with the base entry alone,
and answers every other search with entries without end (until the client
closes), never the search's end: one unbounded answer, within any deadline.
With `--huge-base BYTES`, a base search's entry carries a value of BYTES bytes
(one enormous entry, then the search's end).

    python tests/support/flood_ldap.py [--huge-base BYTES | fat-base | fat-bind | rude-bind]

fat-base: a base search is answered with one entry that never ends instead
(its length says 2 GiB; its bytes come until the client closes): one message,
which a client holds whole before decoding it. fat-bind: so is a bind.
rude-bind: a bind is refused (unwilling to perform) with a diagnostic message
full of terminal escape sequences.

Prints "listening on 127.0.0.1:PORT" once serving, and "sent N" (to stderr)
for each flood a client cut; stops on SIGTERM. BER by hand: only what a
bind, a search and an unbind need.
"""

from __future__ import annotations

import signal
import socket
import socketserver
import sys
import threading

BIND, BIND_DONE, UNBIND = 0x60, 0x61, 0x42
SEARCH, ENTRY, SEARCH_DONE = 0x63, 0x64, 0x65
EXTENDED, EXTENDED_DONE = 0x77, 0x78
UNWILLING = 53
FAT_BASE = sys.argv[1:] == ["fat-base"]
FAT_BIND = sys.argv[1:] == ["fat-bind"]
RUDE_BIND = sys.argv[1:] == ["rude-bind"]
# What a rude directory says when it refuses a bind: escape sequences that
# would write the clipboard and draw a fake status over the terminal's line.
RUDE = b"busy\x1b]52;c;cHduZWQ=\x07\r\x1b[2KSync Completed\nforged"


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _length(len(body)) + body


def _octets(value: bytes) -> bytes:
    return _tlv(0x04, value)


def _message(msgid: int, op: bytes) -> bytes:
    return _tlv(0x30, _tlv(0x02, msgid.to_bytes(4, "big", signed=True)) + op)


def _result(tag: int, code: int = 0, message: bytes = b"") -> bytes:
    return _tlv(tag, _tlv(0x0A, bytes([code])) + _octets(b"") + _octets(message))


def _entry(dn: bytes, attrs: dict[bytes, bytes]) -> bytes:
    parts = b"".join(_tlv(0x30, _octets(k) + _tlv(0x31, _octets(v))) for k, v in attrs.items())
    return _tlv(ENTRY, _octets(dn) + _tlv(0x30, parts))


def _read_tlv(buf: bytes, i: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the element at `i`."""
    tag, first = buf[i], buf[i + 1]
    if first < 0x80:
        return tag, i + 2, i + 2 + first
    n = first & 0x7F
    size = int.from_bytes(buf[i + 2 : i + 2 + n], "big")
    return tag, i + 2 + n, i + 2 + n + size


def _recv_message(sock: socket.socket) -> bytes | None:
    head = b""
    while len(head) < 2 or (head[1] >= 0x80 and len(head) < 2 + (head[1] & 0x7F)):
        data = sock.recv(1)
        if not data:
            return None
        head += data
    _, start, end = _read_tlv(head + b"\0" * 8, 0)
    body = b""
    while len(body) < end - start:
        data = sock.recv(end - start - len(body))
        if not data:
            return None
        body += data
    return body


class Handler(socketserver.BaseRequestHandler):
    huge_base = 0  # bytes of the value a base search's entry carries (0: none)

    def handle(self) -> None:
        sock: socket.socket = self.request
        while (body := _recv_message(sock)) is not None:
            _, start, end = _read_tlv(body, 0)
            msgid = int.from_bytes(body[start:end], "big", signed=True)
            op, op_start, _ = _read_tlv(body, end)
            if op == BIND and FAT_BIND:
                self._fat_entry(sock, msgid, BIND_DONE)
                return
            if op == BIND and RUDE_BIND:
                sock.sendall(_message(msgid, _result(BIND_DONE, UNWILLING, RUDE)))
            elif op == BIND:
                sock.sendall(_message(msgid, _result(BIND_DONE)))
            elif op == UNBIND:
                return
            elif op == SEARCH:
                _, b_start, b_end = _read_tlv(body, op_start)
                base = body[b_start:b_end]
                _, s_start, _ = _read_tlv(body, b_end)
                if body[s_start] == 0 and FAT_BASE:
                    self._fat_entry(sock, msgid, ENTRY)
                    return
                if body[s_start] == 0:  # scope base: the base entry, and done
                    attrs = {b"objectClass": b"top"}
                    if self.huge_base:
                        attrs[b"description"] = b"x" * self.huge_base
                    sock.sendall(_message(msgid, _entry(base, attrs)))
                    sock.sendall(_message(msgid, _result(SEARCH_DONE)))
                else:
                    self._flood(sock, msgid, base)
                    return
            elif op == EXTENDED:
                sock.sendall(_message(msgid, _result(EXTENDED_DONE, UNWILLING)))
            else:  # a write: refused (its answer's tag is the request's plus one)
                sock.sendall(_message(msgid, _result(op + 1, UNWILLING)))

    def _fat_entry(self, sock: socket.socket, msgid: int, tag: int) -> None:
        size = 2**31  # said, never all sent
        head = _tlv(0x02, msgid.to_bytes(4, "big", signed=True))
        head += bytes([tag, 0x84]) + (size - len(head) - 6).to_bytes(4, "big")
        sent = 0
        try:
            sock.sendall(bytes([0x30, 0x84]) + size.to_bytes(4, "big") + head)
            chunk = b"x" * 65536
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the client cut the answer
            print(f"sent {sent}", file=sys.stderr, flush=True)

    def _flood(self, sock: socket.socket, msgid: int, base: bytes) -> None:
        sent = 0
        try:
            while True:
                chunk = b"".join(
                    _message(
                        msgid,
                        _entry(
                            b"cn=f%07d," % (sent + i) + base,
                            {b"sAMAccountName": b"f%07d" % (sent + i), b"cn": b"flood"},
                        ),
                    )
                    for i in range(100)
                )
                sock.sendall(chunk)
                sent += 100
        except OSError:  # the client cut the answer
            print(f"sent {sent}", file=sys.stderr, flush=True)


def main() -> None:
    if sys.argv[1:2] == ["--huge-base"]:
        Handler.huge_base = int(sys.argv[2])
    socketserver.ThreadingTCPServer.daemon_threads = True
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
