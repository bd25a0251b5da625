"""A PostgreSQL server of the drills' own, which they may kill and start again.

The suite's shared server must never be the one killed; this one lives in a temporary
folder, listens on a Unix socket there, and is stopped and deleted at the end of the run.
pgserver gives the binaries; ``pg_ctl`` kills (``stop -m immediate``: no checkpoint, no
goodbye to clients, crash recovery at the next start) and restarts it.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from regfed.postgres.dsn import with_database


class KillablePostgres:
    """An embedded PostgreSQL that drills may stop abruptly and start again."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="regfed-drill-pg-"))
        self._server: Any = None
        self._socket_dir: Path | None = None
        self.dsn = ""

    def start_first(self) -> None:
        """Create the cluster and start it (pgserver does the initdb)."""
        import pgserver

        self._server = pgserver.get_server(self._folder, cleanup_mode=None)
        info = self._server.get_postmaster_info()
        self._socket_dir = info.socket_dir
        self.dsn = str(self._server.get_uri())

    def _command(self, *args: str) -> list[str]:
        """``pg_ctl args`` for this cluster, as the user pgserver runs PostgreSQL as.

        Run as root, pgserver runs PostgreSQL as another user. Python's ``subprocess``
        switches users with fork() rather than vfork(), and a fork() of this process, whose
        gRPC threads are busy with the load, crashes in gRPC's fork handlers; ``runuser``
        switches in the child instead, so the parent only vforks.
        """
        from pgserver._commands import POSTGRES_BIN_PATH

        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self._folder), *args]
        user = self._server.system_user
        return ["runuser", "-u", user, "--", *command] if user else command

    async def _pg_ctl(self, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._command(*args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(60):
            status = await process.wait()
        if status != 0:
            raise subprocess.CalledProcessError(status, self._command(*args))

    async def kill(self) -> None:
        """Stop at once, as a crash would: ``pg_ctl stop -m immediate``."""
        await self._pg_ctl("-w", "stop", "-m", "immediate")

    async def restart(self) -> float:
        """Start again (crash recovery first); the monotonic time it accepted connections."""
        starting = asyncio.create_task(
            self._pg_ctl(
                "-o",
                '-h ""',
                "-o",
                f"-k {self._socket_dir}",
                "-l",
                str(self._folder / "log"),
                "start",
            )
        )
        while True:
            try:
                conn = await asyncpg.connect(self.dsn, timeout=1)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(0.01)
                continue
            accepted = time.monotonic()
            await conn.close()
            break
        await starting
        return accepted

    async def create_database(self, name: str) -> str:
        """A new database on this server; its DSN."""
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return with_database(self.dsn, name)

    def destroy(self) -> None:
        """Stop the server (however it stands) and delete its folder."""
        if self._server is not None:  # stopped already, or not: either way, stopped after
            subprocess.run(
                self._command("-w", "stop", "-m", "immediate"),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
            )
        shutil.rmtree(self._folder, ignore_errors=True)
