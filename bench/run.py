"""The standard benchmark scenario behind ``make bench``.

1. Start an embedded PostgreSQL of its own (``--home``, default ``.regfed/bench``,
   git-ignored) and fill its two registries with ``--people`` synthetic people
   (``regfed.demo.populate``; skipped when the same population was written today).
2. Write the request bodies (``bench/population.py``) for those people.
3. Start the echo baseline (``bench/echo_server.py``) and ``regfed serve --no-seed`` on
   loopback ports of their own, the server pointed at the populated databases.
4. Ask Issue once for a sample of people to get real codes for Verify.
5. Measure, with the same load generator (``bench/loadgen.py``), each for ``--duration``
   seconds at ``--concurrency`` 64: the echo baseline, Issue (no QR image), Issue while
   the reconciler works through a backlog of ``--backlog`` pending applications, Issue
   with a PNG image, Verify; optionally ``--soak`` seconds of Issue for the memory trend.
   Then one reconciler pass over the whole backlog, timed (``bench/backlog.py``).
6. Write ``bench/results/<date>.json`` (every figure, the server's resident memory at the
   start and end of each phase, the machine) and ``bench/results/<date>.md``, and print
   the Markdown table: each call's requests/s, p50/p90/p99 and its ratio to the echo
   baseline's requests/s, which is the figure to track (absolute numbers drift with the
   machine and whatever else runs on it).

Every phase has a time limit, and every child process is killed on exit, on Ctrl-C and on
error. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import backlog  # noqa: E402 - bench/ is not a package
import population  # noqa: E402
from loadgen import HARD_MAX_DURATION, check_loopback, token_metadata  # noqa: E402

PHASES = ("echo", "issue", "issue_backlog", "issue_png", "verify", "reconcile")
# Phases that need the backlog of pending applications; "reconcile" is timed, not loaded.
BACKLOG_PHASES = frozenset({"issue_backlog", "reconcile"})
TITLES = {
    "echo": "Echo (bare grpc.aio baseline)",
    "issue": "Issue (no QR image)",
    "issue_backlog": "Issue, the reconciler working a backlog",
    "issue_png": "Issue (PNG image)",
    "verify": "Verify",
    "soak": "Issue soak",
}
# The bench server's reconciler makes a pass every second (unless REGFED_RECONCILE_INTERVAL
# says otherwise), so a released backlog is taken up at once; its rate cap
# (REGFED_RECONCILE_RATE) is the production default, which it slows down from while the
# server answers calls (the issue_backlog phase) and keeps to when it is idle (reconcile).
RECONCILE_INTERVAL = "1"
START_TIMEOUT = 120.0  # seconds a server gets to answer its health check
OBSERVABILITY = ("full", "off")


def log(message: str) -> None:
    """Progress on stderr, with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- child processes ---------------------------------------------------------------------


class Children:
    """Every child process this run starts, each in its own process group, all ended on
    exit (SIGINT first, then SIGKILL to the whole group)."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], log_file: Path, env: dict[str, str] | None = None) -> (
        subprocess.Popen[bytes]
    ):  # fmt: skip
        """Start ``argv`` with output to ``log_file``."""
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        """End ``proc`` and its group: SIGINT, then SIGKILL after ``grace`` seconds."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        """End every child still running, newest first."""
        for proc in reversed(list(self._procs)):
            self.stop(proc)


def tree_usage(pid: int) -> tuple[int, float] | None:
    """Resident memory (kB) and CPU time used (seconds, user + system) of ``pid`` and its
    descendants, from /proc; None if ``pid`` is gone."""
    rss, cpu, seen, todo = 0, 0.0, set(), [pid]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            status = Path(f"/proc/{current}/status").read_text()
            # Fields 14 and 15 (utime, stime) follow the ")" that ends the command name.
            stat = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            if current == pid:
                return None
            continue
        cpu += (int(stat[11]) + int(stat[12])) / CLOCK_TICKS
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return rss, cpu


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """One reading of the server's process tree."""

    at: float  # seconds since the sampler started
    rss_kb: int
    cpu_seconds: float


class UsageSampler:
    """Samples a process tree's memory and CPU time every ``interval`` seconds in a thread.

    CPU time per call is the steadier figure on a shared machine: throughput falls when
    another process takes a core, the CPU a call costs the server hardly moves.
    """

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def _sample(self) -> None:
        usage = tree_usage(self.pid)
        if usage is not None:
            self.samples.append(Sample(round(time.monotonic() - self._started, 1), *usage))

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> UsageSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()

    def at(self, seconds: float) -> Sample | None:
        """The first sample at or after ``seconds`` (the last one, or None, if none is)."""
        later = [sample for sample in self.samples if sample.at >= seconds]
        return later[0] if later else (self.samples[-1] if self.samples else None)


# --- servers -----------------------------------------------------------------------------


def wait_healthy(
    target: str,
    proc: subprocess.Popen[bytes],
    service: str | None,
    timeout: float = START_TIMEOUT,
) -> None:
    """Until ``target`` answers (health SERVING, or just connects when ``service`` is None),
    ``timeout`` seconds at most."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server on {target} exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server on {target} did not start in {timeout:g} s")
            try:
                if service is None:
                    grpc.channel_ready_future(channel).result(timeout=1)
                    return
                stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs lack Check
                answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except (grpc.RpcError, grpc.FutureTimeoutError):
                pass
            time.sleep(0.5)


def regfed_command() -> list[str]:
    """The ``regfed`` command, run by this interpreter (the bench's own virtualenv)."""
    return [sys.executable, "-c", "from regfed.cli.main import main; main()"]


def observability_env(
    mode: str, home: Path, metrics_port: int, env: dict[str, str], token: str | None = None
) -> Path | None:
    """Configure the server for ``mode`` through ``env``; the bearer-token file the clients
    send, if any (``token``, else a new one).

    ``full`` is production's: the per-call interceptor with JSON log lines, metrics on a
    loopback port, and callers known by a bearer token (a portal token made for the run,
    its SHA-256 in a config file of the run's own). ``off`` turns all of them off.
    """
    if mode == "off":
        env["REGFED_OBSERVE_CALLS"] = "false"
        return None
    import hashlib
    import secrets

    token = token or secrets.token_hex(32)
    token_file = home / "bench-portal.token"
    token_file.write_text(token, encoding="utf-8")
    token_file.chmod(0o600)
    config = home / "bench-regfed.toml"
    digest = hashlib.sha256(token.encode()).hexdigest()
    config.write_text(f'[auth.tokens]\nportal = ["sha256:{digest}"]\n', encoding="utf-8")
    env.update(
        REGFED_CONFIG=str(config),
        REGFED_OBSERVE_CALLS="true",
        REGFED_LOG_FORMAT="json",
        REGFED_METRICS_LISTEN=f"127.0.0.1:{metrics_port}",
    )
    return token_file


# --- the database ------------------------------------------------------------------------


@dataclass
class Population:
    """The populated registries, and how they came to be."""

    store: str
    city: str
    federal: str
    people: int
    seed: int
    populated_on: str
    seconds: float | None  # None: reused from an earlier run today
    summary: dict[str, Any] = field(default_factory=dict)
    postgres: str = ""


async def prepare_population(
    home: Path, people: int, seed: int, repopulate: bool, embedded: Any
) -> Population:
    """The embedded databases, populated (or reused when populated alike today)."""
    import asyncpg

    from regfed.demo.populate import populate
    from regfed.postgres.embedded import CITY_DB, FEDERAL_DB, STORE_DB
    from regfed.service.ports import utc_now

    server_dsn = await asyncio.to_thread(embedded.start)
    dsns = await embedded.ensure_databases(server_dsn, STORE_DB, CITY_DB, FEDERAL_DB)
    conn = await asyncpg.connect(server_dsn)
    try:
        version = str(await conn.fetchval("SELECT version()"))
    finally:
        await conn.close()
    now = utc_now()
    marker = home / "population.json"
    today = now.date().isoformat()
    wanted: dict[str, object] = {"people": people, "seed": seed, "date": today}
    previous = json.loads(marker.read_text()) if marker.exists() else {}
    result = Population(dsns[STORE_DB], dsns[CITY_DB], dsns[FEDERAL_DB], people, seed, today, None)
    result.postgres = version
    if not repopulate and {k: previous.get(k) for k in wanted} == wanted:
        log(f"reusing today's population of {people} people (seed {seed}): --repopulate redoes it")
        result.summary = previous.get("summary", {})
        return result
    marker.unlink(missing_ok=True)
    log(f"populating the registries with {people} people (seed {seed})")
    done = [0]
    step = max(people // 10, 1)

    def progress(count: int) -> None:
        before = done[0]
        done[0] += count
        if done[0] // step != before // step or done[0] == people:
            log(f"  {done[0]:>9,} / {people:,}")

    summary = await asyncio.wait_for(
        populate(dsns[CITY_DB], dsns[FEDERAL_DB], people=people, seed=seed, now=now,
                 progress=progress),
        timeout=3600,
    )  # fmt: skip
    result.seconds = round(summary.seconds, 1)
    result.summary = asdict(summary)
    marker.write_text(json.dumps({**wanted, "summary": result.summary}, indent=2) + "\n")
    log(f"populated in {summary.seconds:.1f} s")
    return result


# --- measuring ---------------------------------------------------------------------------


@dataclass
class Settings:
    """The run's knobs."""

    duration: float
    warmup: float
    concurrency: int
    connections: int
    processes: int
    timeout: float


def measure(
    children: Children,
    name: str,
    call: str,
    target: str,
    data: Path,
    server_pid: int,
    settings: Settings,
    logs: Path,
    duration: float | None = None,
    data_limit: int | None = None,
    token_file: Path | None = None,
) -> dict[str, Any]:
    """One phase: the load generator against ``target``, the server's memory sampled."""
    seconds = settings.duration if duration is None else duration
    out = logs / f"{name}.json"
    out.unlink(missing_ok=True)
    argv = [
        sys.executable, str(BENCH / "loadgen.py"), "--target", target, "--call", call,
        "--data", str(data), "--concurrency", str(settings.concurrency),
        "--connections", str(settings.connections), "--processes", str(settings.processes),
        "--duration", str(seconds), "--warmup", str(settings.warmup),
        "--timeout", str(settings.timeout), "--json", str(out),
    ]  # fmt: skip
    if data_limit is not None:
        argv += ["--data-limit", str(data_limit)]
    if token_file is not None:
        argv += ["--token-file", str(token_file)]
    log(
        f"{TITLES[name]}: {seconds:g} s (+{settings.warmup:g} s warm-up)"
        f" at concurrency {settings.concurrency}"
    )
    limit = seconds + settings.warmup + settings.timeout + 180  # loading the bodies, spawning
    with UsageSampler(server_pid) as usage:
        proc = children.start(argv, logs / f"{name}.log")
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{name}: the load generator overran {limit:.0f} s") from None
        finally:
            children.stop(proc)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"{name}: the load generator failed, see {logs / f'{name}.log'}")
    figures: dict[str, Any] = json.loads(out.read_text())
    # The measured window is the last ``seconds`` of the phase (loading the bodies and
    # spawning the clients come first): "after warm-up" is the sample where it begins.
    samples = usage.samples
    warm = usage.at(samples[-1].at - seconds - 1) if samples else None
    end = samples[-1] if samples else None
    figures["rss_kb"] = {
        "start": samples[0].rss_kb if samples else None,
        "after_warmup": warm.rss_kb if warm else None,
        "end": end.rss_kb if end else None,
        "max": max((sample.rss_kb for sample in samples), default=None),
        "growth_after_warmup_pct": (
            round((end.rss_kb - warm.rss_kb) / warm.rss_kb * 100, 2) if warm and end else None
        ),
    }
    calls = figures["rps"] * (end.at - warm.at) if warm and end else 0
    figures["server_cpu_us_per_call"] = (
        round((end.cpu_seconds - warm.cpu_seconds) / calls * 1e6, 1)
        if warm and end and calls
        else None
    )
    if name == "soak":
        figures["rss_samples"] = [(s.at, s.rss_kb) for s in samples[:: max(1, len(samples) // 120)]]
    errors = sum(n for code, n in figures["status"].items() if code != "OK")
    log(
        f"  {figures['rps']:.0f} rps, p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f}"
        f" ms, {errors} errors, server CPU {figures['server_cpu_us_per_call']} µs/call, RSS "
        f"{_mb(figures['rss_kb']['start'])} -> {_mb(figures['rss_kb']['end'])} MB"
    )
    return figures


def _mb(kb: int | None) -> str:
    return "?" if kb is None else f"{kb / 1024:.0f}"


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    packages = {}
    for name in ("regfed", "grpcio", "protobuf", "asyncpg", "pgserver", "qrcode"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], capture_output=True, text=True, timeout=30, check=True, cwd=ROOT
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    memory = ""
    with contextlib.suppress(OSError, IndexError):
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": packages,
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(results: dict[str, Any]) -> str:
    """The table: each call's figures and its ratio to the echo baseline."""
    phases = results["phases"]
    echo_rps = phases.get("echo", {}).get("rps")
    rows = [
        "| call | requests/s | p50 ms | p90 ms | p99 ms | errors | × echo rps "
        "| server CPU µs/call | server RSS MB start → end |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    for name, f in phases.items():
        errors = sum(n for code, n in f["status"].items() if code != "OK")
        ratio = f"{f['rps'] / echo_rps:.2f}" if echo_rps else "—"
        rss = f["rss_kb"]
        cpu = f.get("server_cpu_us_per_call")
        rows.append(
            f"| {TITLES[name]} | {f['rps']:.0f} | {f['p50_ms']:.1f} | {f['p90_ms']:.1f} | "
            f"{f['p99_ms']:.1f} | {errors} | {ratio} | {'—' if cpu is None else f'{cpu:.0f}'} | "
            f"{_mb(rss['start'])} → {_mb(rss['end'])} |"
        )
    m, c = results["machine"], results["config"]
    pop = results["population"]
    lines = [
        f"regfed benchmark, {results['date']}: {pop['people']:,} people, "
        f"concurrency {c['concurrency']}, {c['duration']:g} s per call "
        f"(+{c['warmup']:g} s warm-up), {c['processes']} client processes, "
        f"{c['connections']} connections, server workers: {c['workers'] or 1}, "
        f"observability: {c.get('observability', 'off')}",
        "",
        *rows,
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"grpcio {m['packages'].get('grpcio', '?')}, commit {m['git_commit'][:12]}"
        f"{' (uncommitted changes)' if m['git_dirty'] else ''}.",
    ]
    if "issue_backlog" in phases and "issue" in phases:
        loaded, idle = phases["issue_backlog"], phases["issue"]
        lines += [
            "",
            f"Issue with a backlog: {loaded['rps'] / idle['rps'] * 100:.0f} % of Issue without "
            f"({loaded['backlog']['checked_during_phase']:,} of {loaded['backlog']['pending']:,}"
            " pending applications checked by the reconciler during the phase).",
        ]
    reconcile = results.get("reconcile")
    if reconcile:
        state = "" if reconcile["complete"] else f" (INCOMPLETE: {reconcile['checked']:,} checked)"
        lines += [
            "",
            f"Reconciler: one pass over {reconcile['applications']:,} pending applications of "
            f"people missing from both registries in {reconcile['seconds']} s "
            f"({reconcile['checks_per_second']} checks/s){state}.",
        ]
    soak = results.get("soak")
    if soak:
        rss = soak["rss_kb"]
        lines += [
            "",
            f"Soak: Issue for {c['soak']:g} s, {soak['rps']:.0f} rps, p99 {soak['p99_ms']:.1f} ms;"
            f" server RSS after warm-up {_mb(rss['after_warmup'])} MB, at the end "
            f"{_mb(rss['end'])} MB ({rss['growth_after_warmup_pct']:+.1f} %).",
        ]
    return "\n".join(lines) + "\n"


# --- the scenario ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="the standard regfed benchmark (make bench)")
    parser.add_argument("--people", type=int, default=100_000, help="population size")
    parser.add_argument("--seed", type=int, default=population.DEFAULT_SEED)
    parser.add_argument("--repopulate", action="store_true", help="populate even if done today")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per call")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not counted")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--processes", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--timeout", type=float, default=20.0, help="per call, seconds")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset")
    parser.add_argument("--workers", type=int, help="regfed serve --workers N")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of Issue for memory")
    parser.add_argument("--verify-sample", type=int, default=2_000, help="people asked for codes")
    parser.add_argument(
        "--backlog", type=int, default=10_000, help="pending applications for the backlog phases"
    )
    parser.add_argument(
        "--reconcile-limit", type=float, default=300.0, help="seconds the timed pass may take"
    )
    parser.add_argument("--home", type=Path, default=ROOT / ".regfed" / "bench")
    parser.add_argument("--port", type=int, default=50151, help="regfed's loopback port")
    parser.add_argument("--echo-port", type=int, default=50152, help="the echo server's port")
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    parser.add_argument(
        "--observability",
        choices=OBSERVABILITY,
        default="full",
        help="full: per-call log lines (JSON), Prometheus metrics and a bearer-token check, "
        "as in production; off: none of them, to measure what they cost",
    )
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; choose from {', '.join(PHASES)}")
    args.phases = phases
    if args.duration + args.warmup > HARD_MAX_DURATION or args.duration <= 0:
        parser.error(f"--duration plus --warmup must be within (0, {HARD_MAX_DURATION:g}] s")
    if args.soak < 0 or args.soak + args.warmup > HARD_MAX_DURATION:
        parser.error(f"--soak plus --warmup must be within [0, {HARD_MAX_DURATION:g}] s")
    if not 0 < args.people <= 10_000_000:
        parser.error("--people must be within 1..10,000,000")
    if not 0 < args.backlog <= 1_000_000:
        parser.error("--backlog must be within 1..1,000,000")
    if not 0 < args.reconcile_limit <= HARD_MAX_DURATION:
        parser.error(f"--reconcile-limit must be within (0, {HARD_MAX_DURATION:g}] s")
    return args


def application_key(home: Path) -> Path:
    """The bench server's application key (it is given three DSNs, so it needs one named)."""
    from regfed.keystore.secretfile import read_secret

    path = home / "application.key"
    read_secret(path, setting="application_key_file", create=True)
    return path


async def prepare_backlog(
    store: backlog.Store,
    target: str,
    args: argparse.Namespace,
    metadata: tuple[tuple[str, str], ...],
) -> int:
    """Submit the backlog and park it; how many applications are pending. A rerun over the
    same database gets the open applications back (one per person) instead of new ones."""
    await store.park()
    if await store.pending() < args.backlog:
        log(f"submitting {args.backlog:,} applications for people missing from the registries")
        await backlog.submit_backlog(
            target, args.people, args.seed, args.backlog, metadata=metadata
        )
    await settle_backlog(store)
    pending = await store.pending()
    log(f"  {pending:,} applications pending, parked")
    return pending


async def settle_backlog(store: backlog.Store) -> None:
    """Park the backlog, and again once checks in flight have been written (a check that
    settles after the first park schedules its application a second ahead)."""
    await store.park()
    await asyncio.sleep(2)
    await store.park()


def run(args: argparse.Namespace, children: Children) -> dict[str, Any]:
    from regfed.postgres.embedded import EmbeddedPostgres

    home: Path = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    logs = home / "logs"
    if logs.exists():
        shutil.rmtree(logs)
    logs.mkdir()
    data = home / "data"
    target, echo_target = f"127.0.0.1:{args.port}", f"127.0.0.1:{args.echo_port}"
    check_loopback(target)
    check_loopback(echo_target)
    started = dt.datetime.now(dt.UTC)
    machine = machine_info()

    embedded = EmbeddedPostgres(home)
    try:
        pop = asyncio.run(
            prepare_population(home, args.people, args.seed, args.repopulate, embedded)
        )
        log("writing the request bodies")
        population.write_issue_bodies(data, args.people, args.seed)
        if "issue_backlog" in args.phases:
            # From the population's other half: the Issue phase's first calls issue new
            # certificates, and so must this one's (a re-issue is cheaper), to compare.
            population.write_bodies(
                data, "issue_backlog",
                population.issue_bodies(args.people, args.seed, start=args.people // 2),
            )  # fmt: skip

        serve = [
            *regfed_command(), "serve", "--no-seed", "--listen", target,
            "--store-dsn", pop.store, "--city-dsn", pop.city, "--federal-dsn", pop.federal,
        ]  # fmt: skip
        workers: int | None = args.workers
        if workers is not None:
            serve += ["--workers", str(workers)]
        env = {**os.environ, "REGFED_HOME": str(home)}
        env.pop("REGFED_CONFIG", None)
        token_file = observability_env(args.observability, home, args.port + 2, env)
        metadata = token_metadata(token_file)
        env.setdefault("REGFED_RECONCILE_INTERVAL", RECONCILE_INTERVAL)
        env.setdefault("REGFED_APPLICATION_KEY_FILE", str(application_key(home)))
        log(f"starting regfed on {target} and the echo server on {echo_target}")
        server = children.start(serve, logs / "server.log", env=env)
        echo = children.start(
            [sys.executable, str(BENCH / "echo_server.py"), "--listen", echo_target],
            logs / "echo_server.log",
        )
        wait_healthy(echo_target, echo, None)
        wait_healthy(target, server, "regfed.v1.CertificateService")

        if "verify" in args.phases:
            log(f"asking Issue for {args.verify_sample} people to get codes for Verify")
            count = asyncio.run(
                population.write_verify_bodies(
                    data, target, args.people, args.seed, args.verify_sample, metadata=metadata
                )
            )
            log(f"  {count} codes")

        store = backlog.Store(pop.store)
        pending = 0
        if BACKLOG_PHASES & set(args.phases):
            pending = asyncio.run(prepare_backlog(store, target, args, metadata))

        settings = Settings(
            args.duration, args.warmup, args.concurrency, args.connections, args.processes,
            args.timeout,
        )  # fmt: skip
        phases: dict[str, Any] = {}
        reconcile: dict[str, Any] | None = None
        for name in args.phases:
            for proc, what in ((server, "regfed"), (echo, "the echo server")):
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{what} exited ({proc.returncode}) before the {name} phase: see {logs}"
                    )
            if name == "reconcile":
                log(f"one reconciler pass over {pending:,} pending applications")
                reconcile = asyncio.run(store.one_pass(pending, args.reconcile_limit))
                log(f"  {reconcile['checked']:,} checked in {reconcile['seconds']} s")
            elif name == "issue_backlog":
                released = asyncio.run(store.release())
                phases[name] = measure(
                    children, name, "Issue", target, data / "issue_backlog.jsonl", server.pid,
                    settings, logs, token_file=token_file,
                )  # fmt: skip
                checked, _ = asyncio.run(store.checked_since(released))
                asyncio.run(settle_backlog(store))
                phases[name]["backlog"] = {"pending": pending, "checked_during_phase": checked}
                log(f"  the reconciler checked {checked:,} of {pending:,} during the phase")
            elif name == "echo":
                phases[name] = measure(
                    children, name, "Echo", echo_target, data / "issue.jsonl", echo.pid,
                    settings, logs, data_limit=10_000,
                )  # fmt: skip
            else:
                call, bodies = {
                    "issue": ("Issue", "issue.jsonl"),
                    "issue_png": ("Issue", "issue_png.jsonl"),
                    "verify": ("Verify", "verify.jsonl"),
                }[name]
                phases[name] = measure(
                    children, name, call, target, data / bodies, server.pid, settings, logs,
                    token_file=token_file,
                )  # fmt: skip
        soak = None
        if args.soak > 0 and server.poll() is None:
            soak = measure(
                children, "soak", "Issue", target, data / "issue.jsonl", server.pid, settings,
                logs, duration=args.soak, token_file=token_file,
            )  # fmt: skip
        if server.poll() is not None:
            raise RuntimeError(f"regfed exited ({server.returncode}) during the run: see {logs}")
        if "echo" in phases:
            for figures in phases.values():
                figures["ratio_to_echo_rps"] = round(figures["rps"] / phases["echo"]["rps"], 3)
        children.stop_all()
    finally:
        children.stop_all()
        embedded.stop()

    return {
        "date": started.date().isoformat(),
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine,
        "postgres": pop.postgres,
        "config": {
            "people": args.people,
            "seed": args.seed,
            "duration": args.duration,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "connections": args.connections,
            "processes": args.processes,
            "timeout": args.timeout,
            "workers": workers,
            "soak": args.soak,
            "backlog": args.backlog,
            "reconcile_interval": env["REGFED_RECONCILE_INTERVAL"],
            "reconcile_rate": env.get("REGFED_RECONCILE_RATE", "default"),
            "load_generator": "bench/loadgen.py (grpc.aio, closed loop)",
            "observability": args.observability,
        },
        "population": {
            "people": pop.people,
            "seed": pop.seed,
            "populated_on": pop.populated_on,
            "populate_seconds": pop.seconds,
            "summary": pop.summary,
        },
        "phases": phases,
        "reconcile": reconcile,
        "soak": soak,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM ends the run like Ctrl-C does: through the finally blocks that stop children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    children = Children()
    try:
        results = run(args, children)
    except KeyboardInterrupt:
        log("interrupted: every child process was stopped")
        return 130
    except RuntimeError as exc:
        log(f"failed: {exc}")
        return 1
    finally:
        children.stop_all()
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / results["date"]
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = markdown(results)
    stem.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    log(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
