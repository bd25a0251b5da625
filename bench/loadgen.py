"""A closed-loop gRPC load generator for machines without ghz.

Several client processes (one Python process cannot saturate a server), each running
``grpc.aio`` with its share of the connections and of the concurrency: every "worker"
sends a call, waits for the answer, sends the next (closed loop). Request bodies come
from a JSONL file (``--data``: one request message per line in its JSON form) and are
cycled through, each process starting at another offset, so calls are not all the same
person. Bodies are serialised once, up front, and answers are not decoded: the client
spends as little CPU as it can. ``--rate R`` paces the workers to R calls a second in all
instead (a worker whose answer comes late sends its next call at once), to compare
servers at the same load.

Every run is bounded: by ``--total`` calls and/or ``--duration`` seconds, and always by
``--max-duration`` (600 s). Only loopback targets are accepted.

    .venv/bin/python bench/loadgen.py --target 127.0.0.1:50051 --call Issue \\
        --data .regfed/bench/data/issue.jsonl --concurrency 64 --duration 30 --warmup 3

prints a ghz-style summary; ``--json FILE`` writes the same figures.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import multiprocessing as mp
import multiprocessing.connection
import os
import queue
import sys
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HARD_MAX_DURATION = 600.0
SERVICE = "regfed.v1.CertificateService"
ECHO_METHOD = "/bench.Echo/Echo"
METHODS = {
    "Issue": f"/{SERVICE}/Issue",
    "Verify": f"/{SERVICE}/Verify",
    "Echo": ECHO_METHOD,
}
# The echo baseline sends bytes of about an Issue request's size when no --data is given.
DEFAULT_ECHO_PAYLOAD = b"\x0a\x5a" + b"x" * 90


class RefusedTarget(ValueError):
    """The target is not a loopback address."""


def check_loopback(target: str) -> str:
    """``target`` (host:port) when its host is loopback: 127.0.0.0/8, ::1 or localhost."""
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise RefusedTarget(f"target must be host:port, got {target!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        return target
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise RefusedTarget(f"only loopback targets are allowed, got {host!r}") from None
    if not address.is_loopback:
        raise RefusedTarget(f"only loopback targets are allowed, got {host!r}")
    return target


def request_class(call: str) -> Any:
    """The request message class of ``call`` (None for the echo baseline: raw bytes)."""
    if call == "Echo":
        return None
    from regfed.v1 import certificate_service_pb2 as pb

    return {"Issue": pb.IssueRequest, "Verify": pb.VerifyRequest}[call]


def load_bodies(path: Path | None, call: str, limit: int | None = None) -> list[bytes]:
    """The serialised request bodies of a JSONL file (each line the JSON form of the call's
    request message, parsed strictly). Echo takes Issue bodies, so sizes match."""
    if path is None:
        if call != "Echo":
            raise ValueError(f"--data is required for {call}")
        return [DEFAULT_ECHO_PAYLOAD]
    from google.protobuf import json_format

    from regfed.v1 import certificate_service_pb2 as pb

    cls = request_class(call) or pb.IssueRequest
    bodies: list[bytes] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                message = json_format.Parse(line, cls())
            except json_format.ParseError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
            bodies.append(message.SerializeToString())
            if limit is not None and len(bodies) >= limit:
                break
    if not bodies:
        raise ValueError(f"{path}: no request bodies")
    return bodies


# --- statistics -------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of ascending values, nearest-rank (as ghz)."""
    if not sorted_values:
        return math.nan
    if not 0 <= p <= 100:
        raise ValueError("p must be within 0..100")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Summary:
    """The figures of one run; latencies in milliseconds."""

    call: str
    count: int
    total_s: float
    rps: float
    average_ms: float
    fastest_ms: float
    slowest_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    status: dict[str, int]
    concurrency: int = 0
    connections: int = 0
    processes: int = 0
    warmup_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)


def summarise(
    call: str, latencies_s: Sequence[float], status: dict[str, int], window_s: float
) -> Summary:
    """ghz-style figures from per-call latencies (seconds) over a window of ``window_s``."""
    ordered = sorted(latencies_s)
    count = len(ordered)

    def ms(value: float) -> float:
        return round(value * 1000, 3)

    return Summary(
        call=call,
        count=count,
        total_s=round(window_s, 3),
        rps=round(count / window_s, 1) if window_s > 0 else 0.0,
        average_ms=ms(sum(ordered) / count) if count else math.nan,
        fastest_ms=ms(ordered[0]) if count else math.nan,
        slowest_ms=ms(ordered[-1]) if count else math.nan,
        p50_ms=ms(percentile(ordered, 50)),
        p90_ms=ms(percentile(ordered, 90)),
        p95_ms=ms(percentile(ordered, 95)),
        p99_ms=ms(percentile(ordered, 99)),
        status=dict(sorted(status.items())),
    )


def format_summary(s: Summary) -> str:
    """The summary as ghz prints it, more or less."""
    lines = [
        "",
        "Summary:",
        f"  Call:         {s.call}",
        f"  Count:        {s.count}",
        f"  Total:        {s.total_s:.2f} s",
        f"  Requests/sec: {s.rps:.2f}",
        f"  Average:      {s.average_ms:.2f} ms",
        f"  Fastest:      {s.fastest_ms:.2f} ms",
        f"  Slowest:      {s.slowest_ms:.2f} ms",
        f"  (concurrency {s.concurrency}, connections {s.connections}, "
        f"processes {s.processes}, warm-up {s.warmup_s:g} s excluded)",
        "",
        "Latency distribution:",
    ]
    for name, value in (("50", s.p50_ms), ("90", s.p90_ms), ("95", s.p95_ms), ("99", s.p99_ms)):
        lines.append(f"  {name} % in {value:.2f} ms")
    lines += ["", "Status code distribution:"]
    lines += [f"  [{code}] {n} responses" for code, n in s.status.items()]
    if s.errors:
        lines += ["", "Error distribution:"]
        lines += [f"  [{n}] {message}" for message, n in s.errors.items()]
    return "\n".join(lines) + "\n"


# --- the client processes --------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What one client process does."""

    index: int
    target: str
    method: str
    bodies: list[bytes]
    workers: int
    connections: int
    timeout: float
    total: int | None  # calls this process makes after the warm-up; None: until the end
    warmup: float
    duration: float | None  # seconds after the warm-up; None: until ``total``
    max_duration: float
    metadata: tuple[tuple[str, str], ...] = ()  # e.g. a bearer token
    rate: float | None = None  # this process's calls a second; None: as fast as answered


@dataclass
class ProcessResult:
    """What one client process measured (latencies as a compact array of seconds)."""

    latencies: bytes
    status: dict[str, int]
    errors: dict[str, int]
    measure_start: float  # time.monotonic(), system-wide on Linux
    last_end: float


async def _run_plan(plan: Plan, start_at: float) -> ProcessResult:
    import grpc

    channels = [
        grpc.aio.insecure_channel(
            plan.target,
            # Its own subchannel pool: each channel opens its own HTTP/2 connection.
            options=[("grpc.use_local_subchannel_pool", 1)],
        )
        for _ in range(max(1, plan.connections))
    ]
    for channel in channels:
        await asyncio.wait_for(channel.channel_ready(), timeout=30)
    calls: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
        channel.unary_unary(plan.method) for channel in channels
    ]
    latencies = array("d")
    status: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    measure_start = start_at + plan.warmup
    hard_end = start_at + plan.max_duration
    end = hard_end if plan.duration is None else min(hard_end, measure_start + plan.duration)
    remaining = [plan.total if plan.total is not None else -1]
    last_end = [measure_start]
    offset = plan.index * 7919 % len(plan.bodies)

    async def worker(number: int) -> None:
        call = calls[number % len(calls)]
        position = offset + number
        bodies = plan.bodies
        n = len(bodies)
        metadata = plan.metadata or None
        # Paced: each worker sends every ``interval`` seconds, the workers' slots spread
        # evenly; a worker whose answer came late sends at once (no catching up).
        interval = plan.workers / plan.rate if plan.rate else 0.0
        slot = start_at + number * interval / plan.workers
        while True:
            if interval:
                await asyncio.sleep(max(0.0, slot - time.monotonic()))
                slot = max(slot + interval, time.monotonic())
            begun = time.monotonic()
            if begun >= end:
                return
            measured = begun >= measure_start
            if measured:
                if remaining[0] == 0:
                    return
                if remaining[0] > 0:
                    remaining[0] -= 1
            code = "OK"
            try:
                await call(bodies[position % n], timeout=plan.timeout, metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
                if measured:
                    errors[f"{code}: {exc.details()}"[:200]] += 1
            position += plan.workers
            finished = time.monotonic()
            if measured and finished <= end:
                latencies.append(finished - begun)
                status[code] += 1
                last_end[0] = max(last_end[0], finished)

    try:
        await asyncio.gather(*(worker(i) for i in range(plan.workers)))
    finally:
        for channel in channels:
            await channel.close()
    return ProcessResult(
        latencies.tobytes(), dict(status), dict(errors), measure_start, last_end[0]
    )


def _client_process(
    plan: Plan,
    ready: Any,  # multiprocessing Event
    go: Any,  # multiprocessing Value of the shared start instant
    out: Any,  # multiprocessing Queue
) -> None:
    async def main() -> ProcessResult:
        ready.set()
        deadline = time.monotonic() + 60
        while go.value == 0.0:
            if time.monotonic() > deadline:
                raise TimeoutError("never told to start")
            await asyncio.sleep(0.01)
        return await _run_plan(plan, go.value)

    try:
        out.put((plan.index, asyncio.run(main())))
    except BaseException as exc:  # reported to the parent, which fails the run
        out.put((plan.index, f"{type(exc).__name__}: {exc}"))


def _split(amount: int, parts: int) -> list[int]:
    """``amount`` split into ``parts`` near-equal non-negative shares."""
    base, extra = divmod(amount, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def run_load(
    *,
    target: str,
    call: str,
    bodies: list[bytes],
    concurrency: int,
    connections: int,
    processes: int,
    total: int | None,
    duration: float | None,
    warmup: float,
    timeout: float,
    max_duration: float = HARD_MAX_DURATION,
    metadata: tuple[tuple[str, str], ...] = (),
    rate: float | None = None,
) -> Summary:
    """Run the load in ``processes`` client processes and combine their figures;
    ``rate``: calls a second in all, paced (at most ``concurrency`` in flight)."""
    check_loopback(target)
    if total is None and duration is None:
        raise ValueError("give --total and/or --duration")
    max_duration = min(max_duration, HARD_MAX_DURATION)
    processes = max(1, min(processes, concurrency))
    workers = _split(concurrency, processes)
    conns = [max(1, c) for c in _split(max(connections, processes), processes)]
    totals = _split(total, processes) if total is not None else [None] * processes
    ctx = mp.get_context("spawn")  # no fork: gRPC's core does not survive it
    ready = [ctx.Event() for _ in range(processes)]
    go = ctx.Value("d", 0.0)
    out = ctx.Queue()
    children = [
        ctx.Process(
            target=_client_process,
            args=(
                Plan(
                    index=i,
                    target=target,
                    method=METHODS[call],
                    bodies=bodies,
                    workers=workers[i],
                    connections=conns[i],
                    timeout=timeout,
                    total=totals[i],
                    warmup=warmup,
                    duration=duration,
                    max_duration=max_duration,
                    metadata=metadata,
                    rate=rate * workers[i] / concurrency if rate else None,
                ),
                ready[i],
                go,
                out,
            ),
            daemon=True,
        )
        for i in range(processes)
    ]
    results: dict[int, ProcessResult] = {}
    try:
        for child in children:
            child.start()
        for event in ready:
            if not event.wait(60):
                raise RuntimeError("a client process did not start within 60 s")
        with go.get_lock():
            go.value = time.monotonic() + 0.5
        give_up = go.value + max_duration + timeout + 60
        while len(results) < processes:
            try:
                index, result = out.get(timeout=max(0.1, min(5.0, give_up - time.monotonic())))
            except queue.Empty:
                if time.monotonic() > give_up:
                    raise RuntimeError("client processes did not finish in time") from None
                if all(not c.is_alive() for c in children) and out.empty():
                    raise RuntimeError("client processes died without a result") from None
                continue
            if isinstance(result, str):
                raise RuntimeError(f"client process {index} failed: {result}")
            results[index] = result
    finally:
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
                child.join(timeout=5)
    latencies = array("d")
    status: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for result in results.values():
        latencies.frombytes(result.latencies)
        status.update(result.status)
        errors.update(result.errors)
    start = min(r.measure_start for r in results.values())
    window = max(r.last_end for r in results.values()) - start
    if duration is not None and total is None:
        window = max(window, min(duration, max_duration))
    summary = summarise(call, latencies, dict(status), window)
    summary.concurrency = concurrency
    summary.connections = sum(conns)
    summary.processes = processes
    summary.warmup_s = warmup
    summary.errors = dict(errors.most_common(10))
    return summary


def token_metadata(path: Path | None) -> tuple[tuple[str, str], ...]:
    """The bearer-token metadata of the token in ``path`` (none without a path)."""
    if path is None:
        return ()
    return (("authorization", f"Bearer {path.read_text(encoding='utf-8').strip()}"),)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="127.0.0.1:50051", help="loopback host:port")
    parser.add_argument("--call", choices=sorted(METHODS), default="Issue")
    parser.add_argument("--data", type=Path, help="JSONL file of request bodies")
    parser.add_argument("--data-limit", type=int, help="read at most this many bodies")
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--processes", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("-n", "--total", type=int, help="calls to make after the warm-up")
    parser.add_argument("-z", "--duration", type=float, help="seconds to measure")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds not counted")
    parser.add_argument("-t", "--timeout", type=float, default=20.0, help="per call, seconds")
    parser.add_argument(
        "--max-duration",
        type=float,
        default=HARD_MAX_DURATION,
        help=f"hard bound on the whole run, seconds (at most {HARD_MAX_DURATION:g})",
    )
    parser.add_argument(
        "--rate", type=float, help="calls a second, paced (default: closed loop, flat out)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--token-file", type=Path, help="send authorization: Bearer <the file's token>"
    )
    args = parser.parse_args(argv)
    try:
        check_loopback(args.target)
    except RefusedTarget as exc:
        parser.error(str(exc))
    if args.total is None and args.duration is None:
        parser.error("give --total and/or --duration: every run is bounded")
    if args.concurrency < 1 or args.connections < 1 or args.processes < 1:
        parser.error("--concurrency, --connections and --processes must be positive")
    if args.rate is not None and not 0 < args.rate <= 1_000_000:
        parser.error("--rate must be within (0, 1000000]")
    if args.total is not None and args.total < 1:
        parser.error("--total must be positive")
    if not 0 < args.max_duration <= HARD_MAX_DURATION:
        parser.error(f"--max-duration must be within (0, {HARD_MAX_DURATION:g}]")
    if args.duration is not None and not 0 < args.duration + args.warmup <= args.max_duration:
        parser.error("--duration plus --warmup must be positive and within --max-duration")
    try:
        bodies = load_bodies(args.data, args.call, args.data_limit)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    summary = run_load(
        target=args.target,
        call=args.call,
        bodies=bodies,
        concurrency=args.concurrency,
        connections=args.connections,
        processes=args.processes,
        total=args.total,
        duration=args.duration,
        warmup=args.warmup,
        timeout=args.timeout,
        max_duration=args.max_duration,
        metadata=token_metadata(args.token_file),
        rate=args.rate,
    )
    sys.stdout.write(format_summary(summary))
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(summary), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
