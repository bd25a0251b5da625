"""The ``regfed`` command: serve, db migrate, demo seed and arrive, keys, issue,
applications, stats."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from regfed import logs
from regfed.cli.applications import applications, stats
from regfed.cli.client import (
    EXIT_STATUSES,
    Connection,
    client_command,
    issue,
    revoke_call,
    trust_fetch,
    verify,
)
from regfed.config import Settings, load_settings
from regfed.errors import ConfigError
from regfed.keystore.secretfile import read_secret

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    # The default loop, not uvloop: grpc.aio drives its completion queue from a poller
    # thread, and measured on the Issue path uvloop gained nothing (BENCHMARKS.md).
    return asyncio.run(coro)


def _settings(ctx: click.Context, **flags: Any) -> Settings:
    try:
        return load_settings(ctx.obj["config"], **flags)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(epilog=EXIT_STATUSES)
@click.version_option(package_name="regfed", message="regfed %(version)s")
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML config file (else REGFED_CONFIG).",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def main(ctx: click.Context, config: Path | None, verbose: bool) -> None:
    """regfed: signed COVID-19 certificates from the city and federal registries."""
    logs.configure(verbose=verbose)
    ctx.obj = {"config": config, "verbose": verbose}


def _dsn_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for name, help_text in (
        ("federal-dsn", "Federal registry (REGFED_FEDERAL_DSN)."),
        ("city-dsn", "City registry (REGFED_CITY_DSN)."),
        ("store-dsn", "The service's own database (REGFED_STORE_DSN)."),
    ):
        func = click.option(f"--{name}", help=help_text + " Unset: embedded PostgreSQL.")(func)
    return func


TRY_IT = """
regfed is serving on {listen} (Ctrl-C stops it and the embedded database).

Try it:
  .venv/bin/regfed issue --last-name Белова --first-name Мария --birth-date 1985-04-12 \\
      --snils "146-287-359 90" --qr-out belova.png
  grpcurl -plaintext -d '{{"person": {{"last_name": "Белова", "first_name": "Мария",
      "birth_date": "1985-04-12", "snils": "14628735990"}}}}' \\
      {listen} regfed.v1.CertificateService/Issue
  grpcurl -plaintext {listen} grpc.health.v1.Health/Check
  .venv/bin/regfed applications submit --last-name Зайцев --first-name Артём \\
      --birth-date 1993-07-14 --snils 30158294753 --contact zaitsev@example.org
  .venv/bin/regfed demo arrive Зайцев      # then: regfed applications show ID
The README lists every demo person and what each gets, and tells the late one's story.
"""


@main.command()
@click.option("--listen", help="host:port to serve on (REGFED_LISTEN).")
@_dsn_options
@click.option("--keys-dir", type=click.Path(path_type=Path), help="Signing keys (REGFED_KEYS_DIR).")
@click.option(
    "--trust-dir", type=click.Path(path_type=Path), help="Partner certificates (REGFED_TRUST_DIR)."
)
@click.option("--no-seed", is_flag=True, help="Do not (re)seed the embedded demo registries.")
@click.option(
    "--insecure",
    is_flag=True,
    help="Serve plaintext on an address beyond loopback (REGFED_INSECURE); TLS is the norm.",
)
@click.option(
    "--metrics-from-supervisor",
    is_flag=True,
    hidden=True,  # set by the --workers supervisor: it serves /metrics for every worker
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes sharing the port (SO_REUSEPORT).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    /,
    no_seed: bool,
    insecure: bool,
    metrics_from_supervisor: bool,
    workers: int,
    **flags: Any,
) -> None:
    """Serve regfed.v1 (gRPC, health, reflection) until SIGINT or SIGTERM."""
    settings = _settings(ctx, insecure=True if insecure else None, **flags)
    logs.configure(verbose=ctx.obj["verbose"], log_format=settings.log_format)
    try:
        if workers == 1:
            _run(_serve(settings, seed=not no_seed, serve_metrics=not metrics_from_supervisor))
            return
        from regfed.cli.workers import supervise

        status = _run(
            supervise(
                settings,
                workers,
                seed=not no_seed,
                config=ctx.obj["config"],
                verbose=ctx.obj["verbose"],
                on_ready=lambda: _announce(settings),
            )
        )
    except ConfigError as exc:  # KeyFileError is one too
        raise click.ClickException(f"cannot start: {exc}") from None
    sys.exit(status)


def _announce(settings: Settings) -> None:
    """Tell a developer running the demo what to try."""
    if settings.embedded:
        click.echo(TRY_IT.format(listen=settings.listen), err=True)


async def _serve(settings: Settings, *, seed: bool, serve_metrics: bool = True) -> None:
    """Serve until SIGINT or SIGTERM, which are obeyed at any moment: during start-up too
    (the start is abandoned and what it opened is closed), then with a graceful stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    from regfed.app import Application

    log = logging.getLogger(__name__)
    log.info("starting (pid %d); SIGTERM or SIGINT stops at any moment", os.getpid())
    app = Application(settings, serve_metrics=serve_metrics)
    starting = asyncio.create_task(app.start(seed_demo=seed))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait((starting, stopping), return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        log.info("stopping during start-up")
        starting.cancel()
        await asyncio.wait((starting,))  # its cleanup runs; its CancelledError stays there
        return
    stopping.cancel()
    starting.result()  # a failed start raises here (ConfigError: "cannot start")
    _announce(settings)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await app.stop()


@main.group()
def db() -> None:
    """The service's own database."""


@db.command("migrate")
@click.option("--store-dsn", help="The service's database (REGFED_STORE_DSN). Unset: embedded.")
@click.pass_context
def db_migrate(ctx: click.Context, store_dsn: str | None) -> None:
    """Apply pending schema migrations."""
    settings = _settings(ctx, store_dsn=store_dsn)

    async def run() -> tuple[list[int], list[int]]:
        import asyncpg

        from regfed.app import open_databases
        from regfed.store.migrate import ahead, migrate

        async with contextlib.AsyncExitStack() as stack:
            dsn = settings.store_dsn or (await open_databases(settings, stack)).store
            conn = await asyncpg.connect(dsn)
            try:
                return await migrate(conn), await ahead(conn)
            finally:
                await conn.close()

    applied, newer = _run(run())
    click.echo(f"applied migrations: {applied}" if applied else "the store is up to date")
    if newer:
        click.echo(
            f"the store also holds migrations {newer} that this release does not ship: "
            "a newer release migrated it",
            err=True,
        )


@main.group()
def audit() -> None:
    """The audit trail: certificates issued, revocations, refused calls."""


@audit.command("list")
@click.option("--since", type=click.DateTime(), help="From this UTC instant on.")
@click.option("--caller", help='Only this caller, e.g. "certificate portal-1.city.example".')
@click.option(
    "--action", type=click.Choice(["issue", "revoke", "refuse"]), help="Only this action."
)
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--store-dsn", help="The service's database (REGFED_STORE_DSN). Unset: embedded.")
@click.pass_context
def audit_list(
    ctx: click.Context,
    since: datetime | None,
    caller: str | None,
    action: str | None,
    limit: int,
    as_json: bool,
    store_dsn: str | None,
) -> None:
    """Show the audit trail, oldest first: who issued, revoked, or was refused, and when."""
    from regfed.service.audit import Action, AuditEntry

    settings = _settings(ctx, store_dsn=store_dsn)

    async def run() -> list[AuditEntry]:
        import asyncpg

        from regfed.app import open_databases
        from regfed.store.audit import list_entries

        async with contextlib.AsyncExitStack() as stack:
            dsn = settings.store_dsn or (await open_databases(settings, stack)).store
            conn = await asyncpg.connect(dsn)
            try:
                return await list_entries(
                    conn,
                    since=since.replace(tzinfo=UTC) if since else None,
                    caller=caller,
                    action=Action(action) if action else None,
                    limit=limit,
                )
            finally:
                await conn.close()

    for entry in _run(run()):
        if as_json:
            fields = {**asdict(entry), "at": entry.at.isoformat(), "action": entry.action.value}
            click.echo(json.dumps(fields, ensure_ascii=False))
        else:
            what = entry.uvci or entry.outcome or ""
            click.echo(
                f"{entry.at:%Y-%m-%d %H:%M:%S%z}  {entry.action.value:7} {entry.method:18} "
                f"{entry.role or '-':8} {entry.caller}  [{entry.request_id}]  {what}"
            )


@main.group()
def demo() -> None:
    """Demo data."""


async def _registry_dsns(settings: Settings, stack: contextlib.AsyncExitStack) -> tuple[str, str]:
    """The city and federal DSNs to fill: as configured, else the embedded databases."""
    city, federal = settings.city_dsn, settings.federal_dsn
    if city is None or federal is None:
        from regfed.app import open_databases

        dbs = await open_databases(settings, stack)
        city, federal = dbs.city, dbs.federal
    return city, federal


@demo.command("seed")
@click.option("--city-dsn", help="City registry to fill. Unset: embedded.")
@click.option("--federal-dsn", help="Federal registry to fill. Unset: embedded.")
@click.pass_context
def demo_seed(ctx: click.Context, city_dsn: str | None, federal_dsn: str | None) -> None:
    """(Re)fill the registries with the demo people, dated relative to today."""
    settings = _settings(ctx, city_dsn=city_dsn, federal_dsn=federal_dsn)

    async def run() -> None:
        from regfed.demo.seed import seed_demo
        from regfed.service.ports import utc_now

        async with contextlib.AsyncExitStack() as stack:
            city, federal = await _registry_dsns(settings, stack)
            await seed_demo(city, federal, utc_now())

    _run(run())
    click.echo("demo people seeded")


@demo.command("arrive")
@click.argument("name")
@click.option(
    "--federal-dsn",
    help="A demo federal registry to write to, as `demo seed` was pointed. Unset: embedded.",
)
@click.pass_context
def demo_arrive(ctx: click.Context, name: str, federal_dsn: str | None) -> None:
    """Make a demo person's late record arrive in the federal registry (by last name).

    Writes only to the embedded demo registry, or to --federal-dsn given on purpose: never
    to the registry REGFED_FEDERAL_DSN configures for the server.
    """
    from regfed.demo.people import late_person

    try:
        person = late_person(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    settings = _settings(ctx)
    if federal_dsn is None and settings.federal_dsn is not None:
        raise click.UsageError(
            "REGFED_FEDERAL_DSN is set: demo arrive writes only to the embedded demo registry"
            " (or to --federal-dsn, given explicitly)"
        )

    async def run() -> int:
        from regfed.demo.seed import arrive
        from regfed.service.ports import utc_now

        async with contextlib.AsyncExitStack() as stack:
            if federal_dsn is not None:
                dsn = federal_dsn
            else:
                from regfed.app import open_databases

                dsn = (await open_databases(settings, stack)).federal
            return await arrive(dsn, person, utc_now())

    events = _run(run())
    click.echo(
        f"{person.last_name} {person.first_name}: the federal record arrived ({events} events);"
        " a pending application gets its code at the reconciler's next check"
    )


@demo.command("populate")
@click.option("--people", type=click.IntRange(1, 899_999_999), default=100_000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same people.")
@click.option("--city-dsn", help="City registry to fill. Unset: embedded.")
@click.option("--federal-dsn", help="Federal registry to fill. Unset: embedded.")
@click.pass_context
def demo_populate(
    ctx: click.Context, people: int, seed: int, city_dsn: str | None, federal_dsn: str | None
) -> None:
    """REPLACE the registries' contents with N synthetic people, for load tests."""
    from regfed.demo.populate import PopulationSummary

    settings = _settings(ctx, city_dsn=city_dsn, federal_dsn=federal_dsn)

    async def run() -> PopulationSummary:
        from regfed.demo.populate import populate
        from regfed.service.ports import utc_now

        async with contextlib.AsyncExitStack() as stack:
            city, federal = await _registry_dsns(settings, stack)
            with click.progressbar(length=people, label="people", file=sys.stderr) as bar:
                return await populate(
                    city, federal, people=people, seed=seed, now=utc_now(), progress=bar.update
                )

    summary = _run(run())
    click.echo(f"{summary.people} people in {summary.seconds:.1f} s: {summary.categories}")


@main.group()
def keys() -> None:
    """Signing keys."""


@keys.command("generate")
@click.option("--keys-dir", type=click.Path(path_type=Path), help="Where (REGFED_KEYS_DIR).")
@click.option("--name", help="File name stem (default: key-<date>).")
@click.option("--valid-days", default=730, show_default=True, type=click.IntRange(1, 3650))
@click.pass_context
def keys_generate(
    ctx: click.Context, keys_dir: Path | None, name: str | None, valid_days: int
) -> None:
    """Create an EC P-256 signing key and its self-signed certificate."""
    from regfed.keystore.signing import generate_signing_key
    from regfed.service.ports import utc_now

    settings = _settings(ctx, keys_dir=keys_dir)
    folder = settings.signing_keys_dir
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = utc_now()
    key = generate_signing_key(
        folder, name or f"key-{now:%Y%m%d-%H%M%S}", valid_days=valid_days, now=now
    )
    click.echo(f"created {key.name} in {folder}")


@keys.command("list")
@click.option("--keys-dir", type=click.Path(path_type=Path), help="Where (REGFED_KEYS_DIR).")
@click.pass_context
def keys_list(ctx: click.Context, keys_dir: Path | None) -> None:
    """Show each signing key: kid, validity, and which one signs new certificates."""
    from regfed.api.convert import key_id
    from regfed.errors import KeyFileError
    from regfed.hcert.keys import select_signer
    from regfed.keystore.signing import load_signing_keys
    from regfed.service.ports import utc_now

    folder = _settings(ctx, keys_dir=keys_dir).signing_keys_dir
    try:
        found = load_signing_keys(folder) if folder.exists() else []
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    if not found:
        raise click.ClickException(f"no signing keys in {folder}")
    now = utc_now()
    try:
        signing = select_signer(found, now).kid
    except KeyFileError:
        signing = b""
    for key in sorted(found, key=lambda k: k.not_before):
        state = "signs" if key.kid == signing else ("valid" if key.valid_at(now) else "expired")
        click.echo(
            f"{key_id(key.kid)}  {key.not_before:%Y-%m-%d} .. {key.not_after:%Y-%m-%d}"
            f"  {state:8} {key.name}"
        )


@main.group()
def trust() -> None:
    """Partner issuers' certificates."""


@trust.command("add")
@click.argument("pem", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--trust-dir", type=click.Path(path_type=Path), help="Where (REGFED_TRUST_DIR).")
@click.pass_context
def trust_add(ctx: click.Context, pem: Path, trust_dir: Path | None) -> None:
    """Trust the certificate(s) in PEM: a running server picks them up at once."""
    from regfed.hcert.trust import TrustError
    from regfed.keystore.trustdir import add_to_trust_dir

    folder = _settings(ctx, trust_dir=trust_dir).partner_trust_dir
    try:
        added = add_to_trust_dir(folder, pem.read_bytes(), source=pem.name)
    except (TrustError, OSError) as exc:
        raise click.ClickException(f"{pem}: {exc}") from None
    for key in added:
        click.echo(f"trusted {key.subject or '(no readable subject)'} as {key.algorithm}")


@trust.command("list")
@click.option("--trust-dir", type=click.Path(path_type=Path), help="Where (REGFED_TRUST_DIR).")
@click.pass_context
def trust_list(ctx: click.Context, trust_dir: Path | None) -> None:
    """Show the partner certificates in the trust folder, and any file that is not usable."""
    from regfed.api.convert import key_id
    from regfed.keystore.trustdir import load_trust_dir

    loaded = load_trust_dir(_settings(ctx, trust_dir=trust_dir).partner_trust_dir)
    for key in loaded.keys:
        click.echo(f"{key_id(key.kid)}  {key.algorithm}  {key.subject}  ({key.source})")
    for problem in loaded.problems:
        click.echo(f"skipped: {problem}", err=True)


@main.command()
@click.argument("uvci")
@click.option("--reason", required=True, help="Why, for the record.")
@client_command
@click.pass_context
def revoke(ctx: click.Context, conn: Connection, uvci: str, reason: str) -> None:
    """Revoke a certificate (operators only: a client certificate of the operator role, or
    the operator token: --token-file, else REGFED_OPERATOR_TOKEN_FILE when it exists)."""
    token = None
    if conn.token_file is None and conn.tls_cert is None:
        settings = _settings(ctx)
        if settings.operator_token_path.exists():
            try:
                token = read_secret(
                    settings.operator_token_path, setting="operator_token_file", create=False
                )
            except ConfigError as exc:
                raise click.UsageError(str(exc)) from None
    revoke_call(conn, token, uvci, reason)


main.add_command(issue)
main.add_command(verify)
main.add_command(applications)
main.add_command(stats)
trust.add_command(trust_fetch)
