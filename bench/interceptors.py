"""The interceptor stack's own work per call, in isolation: observability on and off.

A Verify-shaped call goes through the server's interceptors as ``app.py`` stacks them —
``ObserveInterceptor`` (request id, JSON log line, the metrics' tally), ``CallLimits``,
``AccessInterceptor`` with a bearer token — to an ``rpc_boundary`` method that returns at
once, with a stand-in for grpc's servicer context; ``off`` is ``CallLimits`` alone, as
with ``REGFED_OBSERVE_CALLS=false`` and no ``[auth]``. No server, no network, no
database: what is measured is only the Python that observability adds to every call.
The JSON lines go to memory. In a loaded server the same code costs two to three times
as much (its code and data are not kept in the caches by a tight loop); compare servers
with ``sidebyside.py``.

    .venv/bin/python bench/interceptors.py          # the best of 7 runs of 20,000 calls
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from regfed import logs
from regfed.api.access import AccessInterceptor
from regfed.api.auth import TokenBook
from regfed.api.errors import rpc_boundary
from regfed.api.limits import CallLimits
from regfed.api.observe import ObserveInterceptor
from regfed.api.wrapping import Behavior
from regfed.metrics import Tally
from regfed.v1 import certificate_service_pb2 as pb

METHOD = "/regfed.v1.CertificateService/Verify"
TOKEN = "b" * 64
PLAIN = (("user-agent", "grpc-python-asyncio/1.70"),)
WITH_TOKEN = (*PLAIN, ("authorization", f"Bearer {TOKEN}"))


class Context:
    """What the interceptors ask of grpc's servicer context."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata
        self._trailing: Any = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def set_trailing_metadata(self, metadata: Any) -> None:
        self._trailing = metadata

    def trailing_metadata(self) -> Any:
        return self._trailing

    def time_remaining(self) -> float:
        return 20.0

    def code(self) -> None:
        return None


class Servicer:
    @rpc_boundary
    async def Verify(self, request: Any, context: Any) -> int:  # noqa: N802  # gRPC's name
        return 0


def stacks(tally: Tally) -> tuple[Behavior, Behavior]:
    """The behaviour of Verify without observability, and with it."""
    servicer = Servicer()

    def inner(request: Any, context: Any) -> Any:
        return servicer.Verify(request, context)

    def limits() -> CallLimits:
        return CallLimits(max_in_flight=1000, default_deadline=20.0)

    off = limits().wrap(METHOD, inner)
    tokens = TokenBook({"portal": ["sha256:" + hashlib.sha256(TOKEN.encode()).hexdigest()]})
    access = AccessInterceptor(tokens).wrap(METHOD, inner)
    assert off is not None
    assert access is not None
    capped = limits().wrap(METHOD, access)
    assert capped is not None
    full = ObserveInterceptor(tally.call).wrap(METHOD, capped)
    return off, full


async def per_call(behavior: Behavior, metadata: tuple[tuple[str, str], ...], calls: int) -> float:
    """Microseconds per call, over ``calls`` calls after a thousand not counted."""
    request = pb.VerifyRequest(qr_payload="HC1:")
    context: Any = Context(metadata)
    for _ in range(1000):
        await behavior(request, context)
    started = time.perf_counter()
    for _ in range(calls):
        await behavior(request, context)
    return (time.perf_counter() - started) / calls * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per run (at most 1e6)")
    parser.add_argument("--runs", type=int, default=7, help="runs of each (at most 50)")
    args = parser.parse_args(argv)
    if not (1 <= args.calls <= 1_000_000 and 1 <= args.runs <= 50):
        parser.error("--calls within 1..1,000,000 and --runs within 1..50")
    logs.configure(verbose=False, log_format="json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logs.BatchingHandler)
    sink = io.StringIO()
    handler.setStream(sink)
    tally = Tally()
    off, full = stacks(tally)
    best_off = best_full = float("inf")
    for _ in range(args.runs):
        best_off = min(best_off, asyncio.run(per_call(off, PLAIN, args.calls)))
        best_full = min(best_full, asyncio.run(per_call(full, WITH_TOKEN, args.calls)))
        handler.flush()
        sink.seek(0)
        sink.truncate()
    print(
        f"off {best_off:.2f} µs, full {best_full:.2f} µs per call: "
        f"observability adds {best_full - best_off:.2f} µs (best of {args.runs} runs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
