"""Instructions per call of two or more regfed servers, counted by valgrind's callgrind.

CPU time per call (``sidebyside.py``) still moves by a few per cent from one round to the
next on a machine whose cores the load generator and PostgreSQL share, so a cost near 5 %
needs many rounds and stays uncertain. The number of instructions a server executes per
call hardly moves: it depends on what the code does, not on what else the machine does.
This script starts one server per variant (as ``sidebyside.py`` does, each under
``valgrind --tool=callgrind``), sends each the same ``--calls`` requests twice — the first
pass makes every server's measured pass take the same paths (Issue records the
certificates it is the first to issue: the measured pass re-issues them everywhere) — and
counts the instructions of the second pass, every thread of the server included. Then it
counts as long a time with no calls, and takes that background work (timers, flushing
threads) out of the pass's count: valgrind slows the calls, not the clock, so per call it
would weigh some 30 times what it does at full speed.

What it does not see: time lost to cache misses, locks and the system, which instructions
do not count. Under valgrind a server is some 30 times slower, so each pass takes a while
(Issue: about 15 calls/s on the 2-core machine). The counts are kept in
``.regfed/bench/logs/instructions/``; ``callgrind_annotate`` says where they went.

    sudo apt-get install valgrind                                  # once
    .venv/bin/python bench/instructions.py --call Issue            # off vs full
    .venv/bin/python bench/instructions.py --variant new=full --variant old=full@/tmp/old/src
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import loadgen
import run as bench
import sidebyside
from loadgen import load_bodies, run_load

MAX_CALLS = 20_000
START_TIMEOUT = 900.0  # seconds: imports and start-up under valgrind are slow
MAX_IDLE = 120.0  # seconds of the idle window, at most


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--call", choices=("Issue", "Verify"), default="Issue")
    sidebyside.add_server_arguments(parser, port=50181)
    parser.add_argument("--calls", type=int, default=1000, help="calls per pass")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not 1 <= args.calls <= MAX_CALLS:
        parser.error(f"--calls must be within 1..{MAX_CALLS}")
    args.variants = sidebyside.parsed_variants(parser, args)
    return args


@dataclass
class Count:
    """What one server executed: the measured pass, and as long again with no calls."""

    calls: int
    instructions: int = 0
    seconds: float = 0.0
    idle_instructions: int = 0
    idle_seconds: float = 0.0

    @property
    def idle_per_second(self) -> float:
        """What the server does with no call at all: its timers and background threads."""
        return self.idle_instructions / self.idle_seconds

    @property
    def per_call(self) -> float:
        """Instructions per call, the pass's background work taken out: under valgrind
        a pass runs some 30 times slower than it would, so the work a server does every
        second (flushing its logs and metrics, its health and store checks) would weigh
        on each call 30 times as much as it does at full speed."""
        return (self.instructions - self.idle_per_second * self.seconds) / self.calls


def window(args: argparse.Namespace, pid: int, label: str, during: Callable[[], None]) -> (
    tuple[int, float]
):  # fmt: skip
    """The instructions ``pid`` executed while ``during`` ran, and the seconds it took."""
    dumps: Path = args.dumps
    subprocess.run(["callgrind_control", "--zero", str(pid)], check=True, capture_output=True)
    before = set(dumps.glob(f"callgrind.{pid}.out.*"))
    started = time.monotonic()
    during()
    seconds = time.monotonic() - started
    subprocess.run(
        ["callgrind_control", f"--dump={label}", str(pid)], check=True, capture_output=True
    )
    new = sorted(set(dumps.glob(f"callgrind.{pid}.out.*")) - before)
    if len(new) != 1:
        raise RuntimeError(f"expected one new callgrind dump for {pid}, found {len(new)}")
    for line in new[0].read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1]), seconds
    raise RuntimeError(f"{new[0]} has no summary line")


def one_pass(args: argparse.Namespace, variant: sidebyside.Variant, bodies: list[bytes]) -> None:
    """Every body sent once to ``variant``, every call answered OK."""
    summary = run_load(
        target=variant.target,
        call=args.call,
        bodies=bodies,
        concurrency=args.concurrency,
        connections=4,
        processes=1,
        total=len(bodies),
        duration=None,
        warmup=0.0,
        timeout=120.0,
        max_duration=3600,
        metadata=args.metadata,
    )
    sidebyside.all_answered(variant, summary, expected=len(bodies))


def measure(args: argparse.Namespace, variant: sidebyside.Variant, bodies: list[bytes]) -> Count:
    """The instructions of ``variant``'s measured pass, and of as long a time idle."""
    count = Count(len(bodies))
    bench.log(f"{variant.label}: the first pass of {len(bodies)} calls")
    one_pass(args, variant, bodies)
    count.instructions, count.seconds = window(
        args, variant.pid, "measured", lambda: one_pass(args, variant, bodies)
    )
    idle = min(count.seconds, MAX_IDLE)
    count.idle_instructions, count.idle_seconds = window(
        args, variant.pid, "idle", lambda: time.sleep(idle)
    )
    bench.log(
        f"{variant.label}: {count.instructions / count.calls:,.0f} instructions per call, "
        f"{count.per_call:,.0f} without the background's "
        f"{count.idle_per_second:,.0f} a second "
        f"({count.calls / count.seconds:.1f} calls/s under valgrind)"
    )
    return count


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.home = args.home.resolve()
    missing = [t for t in ("valgrind", "callgrind_control") if shutil.which(t) is None]
    if missing:
        bench.log(f"{' and '.join(missing)} not found: apt-get install valgrind")
        return 1
    from regfed.postgres.embedded import EmbeddedPostgres

    args.dumps = args.home / "logs" / "instructions"
    args.dumps.mkdir(parents=True, exist_ok=True)
    for old in args.dumps.glob("callgrind.*"):  # only the latest run's are kept
        old.unlink()
    valgrind = [
        "valgrind", "--tool=callgrind", "--quiet",
        f"--callgrind-out-file={args.dumps}/callgrind.%p.out",
    ]  # fmt: skip
    children = bench.Children()
    embedded = EmbeddedPostgres(args.home)
    counts: dict[str, Count] = {}
    try:
        pop = asyncio.run(
            bench.prepare_population(args.home, args.people, args.seed, False, embedded)
        )
        sidebyside.start_servers(args, children, pop, prefix=valgrind, start_timeout=START_TIMEOUT)
        args.metadata = sidebyside.shared_metadata(args.variants)
        bodies = load_bodies(sidebyside.bodies_file(args), args.call, args.calls)
        for variant in args.variants:
            counts[variant.label] = measure(args, variant, bodies)
    except KeyboardInterrupt:
        bench.log("interrupted: every child process was stopped")
        return 130
    except (RuntimeError, subprocess.CalledProcessError, loadgen.RefusedTarget) as exc:
        bench.log(f"failed: {exc}")
        return 1
    finally:
        children.stop_all()
        embedded.stop()
    first = counts[args.variants[0].label].per_call
    lines = [
        f"{args.call}, {args.calls} calls per pass, concurrency {args.concurrency}",
        "",
        "| variant | instructions per call | the background's per second | per call without it "
        "| vs first |",
        "|---|---:|---:|---:|---:|",
    ]
    for variant in args.variants:
        count = counts[variant.label]
        lines.append(
            f"| {variant.label} ({variant.mode}) | {count.instructions / count.calls:,.0f} | "
            f"{count.idle_per_second:,.0f} | {count.per_call:,.0f} | "
            f"{(count.per_call / first - 1) * 100:+.2f} % |"
        )
    print("\n".join(lines))
    if args.json is not None:
        result: dict[str, Any] = {
            "call": args.call,
            "at": time.strftime("%FT%T%z"),
            "variants": {
                v.label: {"mode": v.mode, "src": str(v.src or ""), **asdict(counts[v.label])}
                for v in args.variants
            },
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
