"""A byte-for-byte TCP forwarder: the cheapest possible relay, as a control.

It adds one process hop between client and upstream and does nothing else (no HTTP, no
parsing), so its extra latency is what any relay pays on this machine just for being a
separate process that must get a core when an event passes. The gateway's numbers are
read against it as well as against the direct path.

    python tcp_forwarder.py --target-port 8000 --port 0     # prints "PORT <n>"
"""

from __future__ import annotations

import argparse
import asyncio

from synthetic_upstream import run


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(host: str, port: int, target_host: str, target_port: int) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(handle, host, port, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--target-port", type=int, required=True)
    args = parser.parse_args()
    try:
        run(serve(args.host, args.port, args.target_host, args.target_port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
