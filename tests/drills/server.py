"""The real server for the drills: ``regfed serve`` in a child process on a free loopback
port, its log collected line by line with the time each line arrived."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE = "regfed.v1.CertificateService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_LISTENING = re.compile(r"serving regfed\.v1 on [\d.]+:(\d+)")


def server_env(
    home: Path, keys: Path, *, store: str, city: str, federal: str, **settings: object
) -> dict[str, str]:
    """The environment of a server over these databases, with ``settings`` as
    ``REGFED_*`` variables (and none inherited from the test run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGFED_")}
    # All three DSNs set, as in production: the application key must be configured.
    application_key = home / "application.key"
    if not application_key.exists():
        home.mkdir(parents=True, exist_ok=True)
        application_key.write_text(secrets.token_hex(32))
        application_key.chmod(0o600)
    env.update(
        REGFED_APPLICATION_KEY_FILE=str(application_key),
        REGFED_LISTEN="127.0.0.1:0",
        REGFED_HOME=str(home),
        REGFED_KEYS_DIR=str(keys),
        REGFED_STORE_DSN=store,
        REGFED_CITY_DSN=city,
        REGFED_FEDERAL_DSN=federal,
        REGFED_GRACE="3",
        REGFED_DRAIN_DELAY="0",
    )
    env.update({f"REGFED_{name.upper()}": str(value) for name, value in settings.items()})
    return env


class ServerProcess:
    """One ``regfed serve`` child process."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[tuple[float, str]] = []  # (time.monotonic(), line)
        self._reader: asyncio.Task[None] | None = None
        self._new_line = asyncio.Event()
        self.port = 0
        self.started_at = 0.0

    @property
    def target(self) -> str:
        """host:port of the server."""
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        """Everything the server has logged so far."""
        return "\n".join(line for _, line in self.lines)

    @property
    def operator_token(self) -> str:
        """The operators' bearer token the server created in its home folder."""
        return (Path(self._env["REGFED_HOME"]) / "operator.token").read_text().strip()

    async def spawn(self) -> None:
        """Start the process; do not wait for it to serve."""
        self.started_at = time.monotonic()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "regfed",
            "serve",
            "--no-seed",
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())

    async def start(self, timeout: float = 60.0) -> float:
        """Start the process and wait until it listens; the seconds that took."""
        await self.spawn()
        match = await self.wait_for(_LISTENING, timeout)
        self.port = int(match.group(1))
        return time.monotonic() - self.started_at

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        while raw := await self.process.stderr.readline():
            self.lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\n")))
            self._new_line.set()
        self._new_line.set()

    async def wait_for(self, pattern: re.Pattern[str] | str, timeout: float) -> re.Match[str]:
        """The first log line matching ``pattern`` (waiting for it at most ``timeout`` s)."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for _, line in self.lines[seen:]:
                    if found := regex.search(line):
                        return found
                seen = len(self.lines)
                if self.process is not None and self.process.returncode is not None:
                    raise AssertionError(f"the server exited:\n{self.log}")
                self._new_line.clear()
                await self._new_line.wait()

    def count(self, pattern: str) -> int:
        """How many log lines match ``pattern``."""
        regex = re.compile(pattern)
        return sum(1 for _, line in self.lines if regex.search(line))

    def signal(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to the server."""
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait_exit(self, timeout: float) -> int:
        """The exit status, waiting at most ``timeout`` seconds."""
        assert self.process is not None
        async with asyncio.timeout(timeout):
            status = await self.process.wait()
        if self._reader is not None:
            await self._reader
        return status

    async def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it will not go; the exit status."""
        if self.process is None or self.process.returncode is not None:
            return None if self.process is None else self.process.returncode
        self.signal(signal.SIGTERM)
        try:
            return await self.wait_exit(30)
        except TimeoutError:
            self.process.kill()
            return await self.wait_exit(10)


class Health:
    """A health client on its own channel."""

    def __init__(self, target: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub: Any = health_pb2_grpc.HealthStub(self._channel)

    async def status(self, service: str = SERVICE, timeout: float = 1.0) -> int | None:
        """The service's status, or None when the check itself failed."""
        try:
            reply = await self._stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.aio.AioRpcError:
            return None
        return int(reply.status)

    async def until(self, status: int, timeout: float, service: str = SERVICE) -> float:
        """Seconds until the service reports ``status`` (polling every 20 ms)."""
        started = time.monotonic()
        async with asyncio.timeout(timeout):
            while await self.status(service) != status:
                await asyncio.sleep(0.02)
        return time.monotonic() - started

    async def close(self) -> None:
        """Close the channel."""
        with contextlib.suppress(Exception):
            await self._channel.close()


class HealthWatch:
    """Polls a server's health in the background: (time, status) every ``every`` s."""

    def __init__(self, target: str, every: float = 0.05) -> None:
        self._health = Health(target)
        self._every = every
        self.samples: list[tuple[float, int | None]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HealthWatch:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._health.close()

    async def _run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), await self._health.status(timeout=0.5)))
            await asyncio.sleep(self._every)

    def first(self, status: int, after: float) -> float | None:
        """The time of the first sample with ``status`` at or after ``after``."""
        return next((t for t, s in self.samples if t >= after and s == status), None)

    def seen(self, status: int, start: float, end: float) -> bool:
        """Whether ``status`` was reported between ``start`` and ``end``."""
        return any(start <= t <= end and s == status for t, s in self.samples)
