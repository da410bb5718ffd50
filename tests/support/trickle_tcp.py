"""A TCP proxy on 127.0.0.1 in front of a real server (slapd): what the client
sends goes through at once; of what the server answers, the first PASS bytes
of each connection go through at once (a bind's answer), then one byte every
PERIOD seconds, each well inside any read timeout (a server that trickles).

    python tests/support/trickle_tcp.py HOST PORT PERIOD PASS

Prints "listening on 127.0.0.1:PORT" once serving; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys


async def main(host: str, port: int, period: float, passed: int) -> None:
    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, slow: bool) -> None:
        sent = 0
        with contextlib.suppress(ConnectionError):
            while data := await src.read(1 << 16):
                if not slow:
                    dst.write(data)
                    await dst.drain()
                    continue
                for i in range(len(data)):
                    if sent >= passed:
                        await asyncio.sleep(period)
                    dst.write(data[i : i + 1])
                    await dst.drain()
                    sent += 1
        dst.close()

    async def each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, port)
        await asyncio.gather(
            pipe(reader, up_writer, slow=False), pipe(up_reader, writer, slow=True)
        )

    server = await asyncio.start_server(each, "127.0.0.1", 0)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])))
