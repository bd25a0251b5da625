"""The baseline: a bare ``grpc.aio`` server with one unary method that answers its input.

No generated code: a generic handler with bytes in and bytes out (``/bench.Echo/Echo``).
Whatever regfed does on top of the gRPC stack shows as the ratio of its requests/s to
this server's, measured by the same load generator in the same run.

    .venv/bin/python bench/echo_server.py --listen 127.0.0.1:50071

Serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

import grpc

SERVICE = "bench.Echo"


async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    """The request, unchanged."""
    return request


def echo_handler() -> grpc.GenericRpcHandler:
    """The generic handler serving ``/bench.Echo/Echo`` (no serialisers: raw bytes)."""
    return grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )


async def start_echo_server(listen: str) -> tuple[grpc.aio.Server, int]:
    """A started echo server on ``listen`` ("host:port", port 0: any), and its port."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
    server.add_generic_rpc_handlers((echo_handler(),))
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot bind {listen}")
    await server.start()
    return server, port


async def serve(listen: str) -> None:
    """Serve until SIGINT or SIGTERM."""
    server, port = await start_echo_server(listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"echo server on port {port}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop(1)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(description="bare grpc.aio echo server (the baseline)")
    parser.add_argument("--listen", default="127.0.0.1:50071", help="host:port")
    args = parser.parse_args(argv)
    # The default event loop, as regfed's own (uvloop measured no better with grpc.aio).
    asyncio.run(serve(args.listen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
