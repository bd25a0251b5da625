"""The embedded PostgreSQL (pgserver) for development, the demo and tests.

It lives under ``<home>/pgdata`` (git-ignored), listens on a Unix socket only, and holds
three databases: the service's own and the two demo registries.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import asyncpg

from regfed.extras import import_extra
from regfed.postgres.dsn import with_database

log = logging.getLogger(__name__)

# Where pgserver counts the processes using a server (pgserver 0.1: a JSON list of pids).
HANDLES = ".handle_pids.json"

STORE_DB = "regfed"
CITY_DB = "regfed_city"
FEDERAL_DB = "regfed_federal"


class EmbeddedPostgres:
    """A PostgreSQL server under ``home``, started on ``start`` and stopped on ``stop``."""

    def __init__(self, home: Path) -> None:
        self._pgdata = (home / "pgdata").resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or join) the server; returns the DSN of its ``postgres`` database."""
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset (pgserver then uses /tmp): noise.
            warnings.simplefilter("ignore")
            # Imported here: production never starts an embedded server, nor installs one.
            pgserver = import_extra(
                "pgserver",
                extra="demo",
                purpose="the embedded PostgreSQL (used while REGFED_STORE_DSN, "
                "REGFED_CITY_DSN or REGFED_FEDERAL_DSN is unset)",
            )

        self._pgdata.mkdir(parents=True, exist_ok=True)
        # Under pgserver's lock between processes, which get_server takes itself next.
        with pgserver.postgres_server.PostgresServer._lock:
            self._forget_dead_users()
        log.info("starting embedded PostgreSQL in %s", self._pgdata)
        self._server = pgserver.get_server(self._pgdata, cleanup_mode="stop")
        return str(self._server.get_uri())

    def _forget_dead_users(self) -> None:
        """pgserver stops the server when the last process using it exits, counting them
        in a file under pgdata; a process killed before it could leave (SIGKILL, a crash,
        a timeout) stays counted, and the server would then outlive every later user —
        ``make run`` stopped with Ctrl-C would leave a PostgreSQL running. Forget them."""
        path = self._pgdata / HANDLES
        try:
            pids = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and _running(pid)]
        if alive != pids:
            log.info("forgetting %d embedded PostgreSQL user(s) gone", len(pids) - len(alive))
            path.write_text(json.dumps(alive), encoding="utf-8")

    def stop(self) -> None:
        """Stop the server if this process started it (other users keep it running)."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    async def ensure_databases(self, server_dsn: str, *names: str) -> dict[str, str]:
        """Create any of ``names`` that does not exist; their DSNs by name."""
        conn = await asyncpg.connect(server_dsn)
        try:
            existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
            for name in names:
                if name not in existing:
                    await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return {name: with_database(server_dsn, name) for name in names}


def _running(pid: int) -> bool:
    """Whether a process ``pid`` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
