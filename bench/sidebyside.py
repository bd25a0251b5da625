"""Server CPU per call of two or more regfed servers, side by side.

``make bench`` measures throughput, and on a machine where the load generator, PostgreSQL
and the server share the cores, a single run's throughput moves by ±20 %: it cannot see a
change of 5 %. This script compares what the server itself spends per call instead. It
starts one server per variant, all at once, on the bench's databases (``make bench``
populates them; this script reuses them), then drives them with the load generator in
turns of ``--turn`` seconds, the order reversed every round, and reads each server's CPU
time (its process tree, user + system, from ``/proc``) before and after each of its turns.
CPU per call moves far less than throughput when another process takes a core, and
alternating short turns spreads what the machine does meanwhile over every variant alike.

A variant is ``LABEL=MODE`` or ``LABEL=MODE@SRC``: MODE is ``full`` or ``off`` as in
``bench/run.py --observability``; SRC is a source folder put first on the server's
``PYTHONPATH``, to compare another revision (``git worktree add /tmp/old REV``, then
``.venv/bin/python tools/protogen.py /tmp/old/src``, and ``old=full@/tmp/old/src``).

    .venv/bin/python bench/sidebyside.py --call Verify --rounds 8          # off vs full
    .venv/bin/python bench/sidebyside.py --variant new=full --variant old=full@/tmp/old/src

Every turn is bounded (``--turn``, at most 60 s), and so is the number of rounds (50).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import loadgen
import population
import run as bench
from loadgen import check_loopback, load_bodies, run_load, token_metadata

MAX_ROUNDS = 50
MAX_TURN = 60.0


@dataclass
class Variant:
    """One server of the comparison."""

    label: str
    mode: str
    src: Path | None
    port: int
    target: str = ""
    token_file: Path | None = None
    pid: int = 0
    cpu_seconds: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)

    @property
    def per_call_us(self) -> list[float]:
        """Server CPU per call of each turn, microseconds."""
        return [c / n * 1e6 for c, n in zip(self.cpu_seconds, self.calls, strict=True)]


def parse_variant(text: str, port: int) -> Variant:
    """``LABEL=MODE[@SRC]``."""
    label, sep, rest = text.partition("=")
    mode, _, src = rest.partition("@")
    if not sep or not label or mode not in bench.OBSERVABILITY:
        raise ValueError(f"a variant is LABEL=MODE[@SRC] with MODE one of full, off: {text!r}")
    path = Path(src).resolve() if src else None
    if path is not None and not (path / "regfed").is_dir():
        raise ValueError(f"{path} holds no regfed package")
    return Variant(label, mode, path, port)


def add_server_arguments(parser: argparse.ArgumentParser, port: int) -> None:
    """The options every comparison of servers takes: the variants, the population
    ``make bench`` wrote, the bench's home, the first server's port."""
    parser.add_argument(
        "--variant", action="append", help="LABEL=MODE[@SRC]; default: off=off and full=full"
    )
    parser.add_argument("--people", type=int, default=100_000, help="as make bench populated")
    parser.add_argument("--seed", type=int, default=population.DEFAULT_SEED)
    parser.add_argument("--home", type=Path, default=bench.ROOT / ".regfed" / "bench")
    parser.add_argument("--port", type=int, default=port, help="the first server's port")


def parsed_variants(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Variant]:
    """The ``--variant`` options as variants, each with its port (a usage error if not)."""
    texts = args.variant or ["off=off", "full=full"]
    try:
        # Each server takes its port and the next two (metrics), as bench/run.py's does.
        variants = [parse_variant(t, args.port + 3 * i) for i, t in enumerate(texts)]
    except ValueError as exc:
        parser.error(str(exc))
    if len({v.label for v in variants}) != len(variants):
        parser.error("variant labels must differ")
    return variants


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--call", choices=("Issue", "Verify"), default="Verify")
    add_server_arguments(parser, port=50161)
    parser.add_argument("--rounds", type=int, default=8, help="turns per variant")
    parser.add_argument("--turn", type=float, default=5.0, help="seconds of load per turn")
    parser.add_argument(
        "--rate", type=float, help="calls a second, paced (default: closed loop, flat out)"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the servers on the last CPU, everything else (PostgreSQL, the load generator) "
        "on the others, so that no other process's work passes through a server's caches",
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--processes", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--json", type=Path, help="also write every turn's figures here")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= MAX_ROUNDS:
        parser.error(f"--rounds must be within 1..{MAX_ROUNDS}")
    if not 0 < args.turn <= MAX_TURN:
        parser.error(f"--turn must be within (0, {MAX_TURN:g}] s")
    args.variants = parsed_variants(parser, args)
    return args


def start_servers(
    args: argparse.Namespace,
    children: bench.Children,
    pop: bench.Population,
    prefix: Sequence[str] = (),
    start_timeout: float = bench.START_TIMEOUT,
) -> None:
    """One ``regfed serve`` per variant (run by ``prefix``, when given: ``taskset``,
    ``valgrind``), each healthy before the next starts."""
    home: Path = args.home
    logs = home / "logs" / "sidebyside"
    logs.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(32)  # one for every server that checks tokens
    for variant in args.variants:
        variant.target = check_loopback(f"127.0.0.1:{variant.port}")
        env = {**os.environ, "REGFED_HOME": str(home)}
        env.pop("REGFED_CONFIG", None)
        own = home / "sidebyside" / variant.label  # its token and config file
        own.mkdir(parents=True, exist_ok=True)
        variant.token_file = bench.observability_env(
            variant.mode, own, variant.port + 2, env, token
        )
        env.setdefault("REGFED_RECONCILE_INTERVAL", bench.RECONCILE_INTERVAL)
        env.setdefault("REGFED_APPLICATION_KEY_FILE", str(bench.application_key(home)))
        if variant.src is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(variant.src), env.get("PYTHONPATH", "")) if p
            )
        serve = [
            *prefix, *bench.regfed_command(), "serve", "--no-seed", "--listen", variant.target,
            "--store-dsn", pop.store, "--city-dsn", pop.city, "--federal-dsn", pop.federal,
        ]  # fmt: skip
        bench.log(f"starting {variant.label} ({variant.mode}) on {variant.target}")
        proc = children.start(serve, logs / f"{variant.label}.log", env=env)
        bench.wait_healthy(variant.target, proc, "regfed.v1.CertificateService", start_timeout)
        variant.pid = proc.pid


def bodies_file(args: argparse.Namespace) -> Path:
    """The request bodies of ``--call``, written when missing."""
    data: Path = args.home / "data"
    if args.call == "Issue":
        path = data / "issue.jsonl"
        if not path.exists():
            population.write_issue_bodies(data, args.people, args.seed)
        return path
    path = data / "verify.jsonl"
    if not path.exists():
        first = args.variants[0]
        asyncio.run(
            population.write_verify_bodies(
                data, first.target, args.people, args.seed, 2_000,
                metadata=token_metadata(first.token_file),
            )
        )  # fmt: skip
    return path


def shared_metadata(variants: Sequence[Variant]) -> tuple[tuple[str, str], ...]:
    """What every call carries, whichever server it goes to: the bearer token the servers
    that check one share (start_servers). A server without an ``[auth]`` table ignores it, so every
    server gets the same bytes and the comparison is of the servers' work alone (a real
    caller sends its credentials either way)."""
    for variant in variants:
        if variant.token_file is not None:
            return token_metadata(variant.token_file)
    return ()


def one_turn(args: argparse.Namespace, variant: Variant, bodies: list[bytes]) -> None:
    """``--turn`` seconds of load on one server; its CPU time and calls recorded."""
    before = bench.tree_usage(variant.pid)
    summary = run_load(
        target=variant.target,
        call=args.call,
        bodies=bodies,
        concurrency=args.concurrency,
        connections=args.connections,
        processes=args.processes,
        total=None,
        duration=args.turn,
        warmup=0.0,
        timeout=20.0,
        max_duration=args.turn + 30,
        metadata=args.metadata,
        rate=args.rate,
    )
    after = bench.tree_usage(variant.pid)
    if before is None or after is None:
        raise RuntimeError(f"the {variant.label} server exited")
    all_answered(variant, summary)
    variant.cpu_seconds.append(after[1] - before[1])
    variant.calls.append(summary.count)
    bench.log(
        f"  {variant.label}: {summary.rps:.0f} rps, "
        f"{variant.per_call_us[-1]:.0f} µs of server CPU per call"
    )


def all_answered(variant: Variant, summary: loadgen.Summary, expected: int | None = None) -> None:
    """RuntimeError unless every call of ``summary`` was answered OK (``expected`` of them,
    when given; at least one otherwise): a comparison of failing servers means nothing."""
    failed = sum(n for code, n in summary.status.items() if code != "OK")
    if failed or not summary.count or summary.count != (expected or summary.count):
        raise RuntimeError(
            f"{variant.label}: {failed} of {summary.count} calls failed: {summary.errors}"
        )


def report(args: argparse.Namespace) -> str:
    """The comparison as a Markdown table. Each variant against the first is the mean of
    the rounds' ratios (both measured in the same round, minutes apart at most), with its
    standard error: what the machine did meanwhile weighs on both sides of each ratio."""
    first = args.variants[0].per_call_us
    load = f"{args.rate:g} calls/s" if args.rate else "closed loop"
    pinned = ", servers pinned to a CPU of their own" if args.pin else ""
    lines = [
        f"{args.call}, {args.rounds} rounds of {args.turn:g} s turns, concurrency"
        f" {args.concurrency}, {load}{pinned}",
        "",
        "| variant | median µs/call | min–max | vs first: mean of the rounds' ratios ± s.e. |",
        "|---|---:|---|---:|",
    ]
    for v in args.variants:
        us = v.per_call_us
        ratios = [(mine / theirs - 1) * 100 for mine, theirs in zip(us, first, strict=True)]
        error = statistics.stdev(ratios) / len(ratios) ** 0.5 if len(ratios) > 1 else 0.0
        lines.append(
            f"| {v.label} ({v.mode}) | {statistics.median(us):.0f} | "
            f"{min(us):.0f}–{max(us):.0f} | {statistics.fmean(ratios):+.1f} % ± {error:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.home = args.home.resolve()
    from regfed.postgres.embedded import EmbeddedPostgres

    cpus = sorted(os.sched_getaffinity(0))
    if args.pin:
        if len(cpus) < 2:
            bench.log("--pin needs two CPUs at least")
            return 1
        # Before PostgreSQL and the load generator start: they inherit this affinity.
        args.server_cpu = cpus[-1]
        os.sched_setaffinity(0, cpus[:-1])

    children = bench.Children()
    embedded = EmbeddedPostgres(args.home)
    try:
        pop = asyncio.run(
            bench.prepare_population(args.home, args.people, args.seed, False, embedded)
        )
        pin = ["taskset", "-c", str(args.server_cpu)] if args.pin else []
        start_servers(args, children, pop, prefix=pin)
        args.metadata = shared_metadata(args.variants)
        bodies = load_bodies(bodies_file(args), args.call, None)
        bench.log(f"warming every server up for {args.turn:g} s")
        for variant in args.variants:
            one_turn(args, variant, bodies)
            variant.cpu_seconds.clear()
            variant.calls.clear()
        for round_ in range(args.rounds):
            order = args.variants if round_ % 2 == 0 else list(reversed(args.variants))
            bench.log(f"round {round_ + 1} of {args.rounds}")
            for variant in order:
                one_turn(args, variant, bodies)
    except KeyboardInterrupt:
        bench.log("interrupted: every child process was stopped")
        return 130
    except (RuntimeError, loadgen.RefusedTarget) as exc:
        bench.log(f"failed: {exc}")
        return 1
    finally:
        children.stop_all()
        embedded.stop()
    table = report(args)
    print(table)
    if args.json is not None:
        turns: dict[str, Any] = {
            v.label: {"mode": v.mode, "src": str(v.src or ""), "us_per_call": v.per_call_us}
            for v in args.variants
        }
        args.json.write_text(
            json.dumps({"call": args.call, "at": time.strftime("%FT%T%z"), "turns": turns},
                       indent=2) + "\n",
            encoding="utf-8",
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
