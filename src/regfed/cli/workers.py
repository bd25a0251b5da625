"""``regfed serve --workers N``: several server processes on one port (SO_REUSEPORT).

One Python process serves on one core. The supervisor does once what workers must not
race on — creating development secrets, starting and seeding the embedded PostgreSQL —
and tries to migrate the store (a store that is down is left to the workers, which
migrate it under an advisory lock when it appears), then starts N ``regfed serve``
processes that share the listening port (``REGFED_REUSE_PORT``: the kernel spreads
connections across them), and stops them all on SIGINT/SIGTERM or as soon as one of them
dies.

Metrics: the workers run prometheus-client in multiprocess mode, in a folder the
supervisor makes for the run (``PROMETHEUS_MULTIPROC_DIR``, emptied first so no earlier
run's values count) and removes at the end; the supervisor alone serves ``/metrics`` on
``REGFED_METRICS_LISTEN``, summing every worker's values into one view.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import asyncpg

from regfed.config import Settings
from regfed.postgres.bounded import DATABASE_ERRORS

log = logging.getLogger(__name__)


async def _prepare(
    settings: Settings, stack: contextlib.AsyncExitStack, seed: bool
) -> dict[str, str]:
    """Secrets, databases, demo data and migrations, once; the workers' environment."""
    from regfed.app import (
        check_transport,
        load_application_sealer,
        load_operator_token,
        load_person_keyer,
        load_signer,
        open_databases,
    )
    from regfed.service.ports import utc_now
    from regfed.store.migrate import migrate

    check_transport(settings)
    load_signer(settings, utc_now)
    load_person_keyer(settings)
    load_application_sealer(settings)
    load_operator_token(settings)
    dbs = await open_databases(settings, stack)
    if dbs.demo and seed:
        from regfed.demo.seed import seed_demo

        await seed_demo(dbs.city, dbs.federal, utc_now())
    try:
        async with asyncio.timeout(settings.store_timeout):
            conn = await asyncpg.connect(dbs.store)
    except DATABASE_ERRORS as exc:
        log.warning("store unreachable (%s): the workers will migrate it", type(exc).__name__)
    else:
        try:
            await migrate(conn)
        finally:
            conn.terminate()
    env = dict(os.environ)
    env.update(
        REGFED_STORE_DSN=dbs.store,
        REGFED_CITY_DSN=dbs.city,
        REGFED_FEDERAL_DSN=dbs.federal,
        REGFED_LISTEN=settings.listen,
        REGFED_HOME=str(settings.home),
        # The workers see three DSNs, as in production, so they need the key named; the
        # supervisor made sure it exists (the demo's is created above).
        REGFED_APPLICATION_KEY_FILE=str(settings.application_key_path),
        REGFED_REUSE_PORT="true",
    )
    if settings.insecure:
        env["REGFED_INSECURE"] = "true"
    for name in ("keys_dir", "trust_dir", "person_key_file", "operator_token_file"):
        value = getattr(settings, name)
        if value is not None:
            env["REGFED_" + name.upper()] = str(value)
    return env


async def supervise(
    settings: Settings,
    workers: int,
    *,
    seed: bool,
    config: Path | None,
    verbose: bool,
    on_ready: Callable[[], None],
) -> int:
    """Run ``workers`` server processes until a signal or a worker's exit; the exit status."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        preparing = asyncio.create_task(_prepare(settings, stack, seed))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait((preparing, stopping), return_when=asyncio.FIRST_COMPLETED)
        if not preparing.done():  # a signal during preparation: nothing started yet
            preparing.cancel()
            await asyncio.wait((preparing,))
            return 0
        env = preparing.result()
        command = [sys.executable, "-m", "regfed"]
        if config is not None:
            command += ["--config", str(config)]
        if verbose:
            command.append("-v")
        command += ["serve", "--no-seed"]
        multiproc_dir: Path | None = None
        if settings.metrics_listen is not None:
            multiproc_dir = Path(tempfile.mkdtemp(prefix="regfed-metrics-"))
            stack.callback(shutil.rmtree, multiproc_dir, ignore_errors=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)
            command.append("--metrics-from-supervisor")
            from regfed.metrics import Endpoint

            endpoint = Endpoint(settings.metrics_listen, multiproc_dir)
            stack.callback(endpoint.close)
            log.info("serving the workers' metrics on %s", settings.metrics_listen)
        processes = [
            await asyncio.create_subprocess_exec(*command, env=env) for _ in range(workers)
        ]
        log.info("started %d workers: %s", workers, [p.pid for p in processes])
        on_ready()
        waits = [asyncio.create_task(p.wait()) for p in processes]
        if multiproc_dir is not None:
            for process, wait in zip(processes, waits, strict=True):
                wait.add_done_callback(functools.partial(_forget, process.pid, multiproc_dir))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([stopping, *waits], return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            log.error("a worker exited; stopping the others")
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(settings.drain_delay + settings.grace + 10):
                await asyncio.gather(*waits)
        except TimeoutError:
            for process in processes:
                if process.returncode is None:
                    process.kill()
            await asyncio.gather(*waits)
        stopping.cancel()
        failed = [p.returncode for p in processes if p.returncode not in (0, -signal.SIGTERM)]
        return 1 if failed and not stop.is_set() else 0


def _forget(pid: int, folder: Path, _: object) -> None:
    """A worker is gone: its live gauges leave the view (its counters stay summed)."""
    from regfed.metrics import worker_exited

    worker_exited(pid, folder)
