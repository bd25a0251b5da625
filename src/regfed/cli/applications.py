"""``regfed applications …`` and ``regfed stats``.

``submit``, ``show`` and ``stats`` call a running server like every client command
(``--target``, ``--json``, the exit statuses of :mod:`regfed.cli.client`). ``list`` is an
operator's command with no RPC behind it (the contract has none): it reads the service
database directly, with the configured DSN, like ``regfed db migrate``. It opens no
sealed data, so it needs no application key and shows no personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from datetime import UTC, datetime
from typing import Any

import click
from google.protobuf import json_format

from regfed.cli.client import (
    EXIT_NEGATIVE,
    Connection,
    certificate_lines,
    client_command,
    person_options,
    show_qr,
    when,
)
from regfed.config import Settings, load_settings
from regfed.errors import ConfigError
from regfed.v1 import certificate_service_pb2 as pb

CATEGORIES = {
    "vaccination-not-found": pb.APPLICATION_CATEGORY_VACCINATION_NOT_FOUND,
    "illness-not-found": pb.APPLICATION_CATEGORY_ILLNESS_NOT_FOUND,
    "other": pb.APPLICATION_CATEGORY_OTHER,
}
STATUSES = ("pending", "issued", "expired")


def _word(enum_type: Any, value: int, prefix: str) -> str:
    """An enum value's name without its prefix, e.g. PENDING."""
    return str(enum_type.Name(value)).removeprefix(prefix)


def _checks(count: int) -> str:
    return f"{count} check" + ("" if count == 1 else "s")


def describe_application(application: pb.Application) -> str:
    """An application, in words."""
    status = _word(pb.ApplicationStatus, application.status, "APPLICATION_STATUS_")
    category = _word(pb.ApplicationCategory, application.category, "APPLICATION_CATEGORY_")
    lines = [
        f"{status}: application {application.application_id}",
        f"  category:    {category}",
        f"  submitted:   {when(application.submitted_at)}",
    ]
    if application.HasField("checked_at"):
        checked = f"{when(application.checked_at)} ({_checks(application.checks)})"
    else:
        checked = "not yet: the registries did not answer"
    lines.append(f"  checked:     {checked}")
    if application.HasField("next_check_at"):
        lines.append(f"  next check:  {when(application.next_check_at)}")
    if application.HasField("closed_at"):
        lines.append(f"  closed:      {when(application.closed_at)}")
    if application.HasField("denial"):
        denial = application.denial
        lines += [
            f"  last denial: {_word(pb.DenialReason, denial.reason, 'DENIAL_REASON_')}",
            f"  message:     {denial.message}",
            f"  hint:        {denial.hint}",
        ]
    if application.status == pb.APPLICATION_STATUS_ISSUED:
        lines += ["", *certificate_lines(application.certificate)]
        lines += ["", application.certificate.qr_payload, ""]
    return "\n".join(lines)


def _answer(conn: Connection, application: pb.Application, no_qr: bool) -> None:
    """Print an application; exit 1 unless it is ISSUED."""
    conn.emit(application, describe_application(application))
    if application.status != pb.APPLICATION_STATUS_ISSUED:
        sys.exit(EXIT_NEGATIVE)
    if not no_qr and not conn.as_json:
        show_qr(application.certificate.qr_payload)


@click.group()
def applications() -> None:
    """Applications: people whose data was missing, re-checked until their code comes."""


@applications.command("submit")
@person_options
@click.option("--contact", required=True, help="The person's e-mail address or phone number.")
@click.option(
    "--category",
    type=click.Choice(list(CATEGORIES)),
    default="other",
    show_default=True,
    help="What the person could not find.",
)
@click.option("--no-qr", is_flag=True, help="Do not draw the QR code in the terminal.")
@client_command
def submit(conn: Connection, person: pb.Person, contact: str, category: str, no_qr: bool) -> None:
    """Apply for a person whose data is missing (exit 0 if issued at once, 1 if pending)."""
    request = pb.SubmitApplicationRequest(
        person=person, contact=contact, category=CATEGORIES[category]
    )
    answer = conn.call(lambda stub, timeout: stub.SubmitApplication(request, timeout=timeout))
    _answer(conn, answer, no_qr)


@applications.command("show")
@click.argument("application_id")
@click.option("--no-qr", is_flag=True, help="Do not draw the QR code in the terminal.")
@client_command
def show(conn: Connection, application_id: str, no_qr: bool) -> None:
    """Show an application, with its code once issued (exit 0 if issued, 1 otherwise)."""
    request = pb.GetApplicationRequest(application_id=application_id)
    answer = conn.call(lambda stub, timeout: stub.GetApplication(request, timeout=timeout))
    _answer(conn, answer, no_qr)


def _settings(ctx: click.Context, **flags: Any) -> Settings:
    try:
        return load_settings(ctx.obj["config"], **flags)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@applications.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only applications in this status.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
@click.option("--store-dsn", help="The service's database (REGFED_STORE_DSN). Unset: embedded.")
@click.pass_context
def list_applications(
    ctx: click.Context, status: str | None, limit: int, as_json: bool, store_dsn: str | None
) -> None:
    """The newest applications, read from the service database (operators; no RPC)."""
    from regfed.api.convert import application as to_message
    from regfed.service.applications import ApplicationView
    from regfed.service.ports import ApplicationRecord, ApplicationStatus

    settings = _settings(ctx, store_dsn=store_dsn)

    async def read() -> list[ApplicationRecord]:
        import asyncpg

        from regfed.app import open_databases
        from regfed.store.applications import ApplicationStore

        async with contextlib.AsyncExitStack() as stack:
            dsn = settings.store_dsn or (await open_databases(settings, stack)).store
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
            try:
                wanted = ApplicationStatus(status) if status else None
                return await ApplicationStore(pool).list(status=wanted, limit=limit)
            finally:
                await pool.close()

    found = [to_message(ApplicationView(record)) for record in asyncio.run(read())]
    if as_json:
        # Each in protobuf's JSON mapping, as the client commands print an Application.
        documents = [json_format.MessageToDict(message) for message in found]
        click.echo(json.dumps({"applications": documents}, ensure_ascii=False, indent=2))
        return
    for message in found:
        click.echo(_row(message))
    if not found:
        click.echo("no applications" + (f" {status}" if status else ""), err=True)


def _row(application: pb.Application) -> str:
    """One application on one line."""
    status = _word(pb.ApplicationStatus, application.status, "APPLICATION_STATUS_")
    category = _word(pb.ApplicationCategory, application.category, "APPLICATION_CATEGORY_")
    denial = (
        _word(pb.DenialReason, application.denial.reason, "DENIAL_REASON_")
        if application.HasField("denial")
        else "-"
    )
    if application.HasField("closed_at"):
        then = f"closed {when(application.closed_at)}"
    else:
        then = f"next check {when(application.next_check_at)}"
    return (
        f"{application.application_id}  {status:8} {category:22} submitted "
        f"{when(application.submitted_at)}  {_checks(application.checks):9} "
        f"last denial {denial:23} {then}"
    )


def _duration(seconds: float) -> str:
    """A duration in words, to the second."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes else []
    return " ".join([*parts, f"{secs} s"]) if secs or not parts else " ".join(parts)


def describe_stats(response: pb.GetStatsResponse) -> str:
    """GetStats, in words."""

    def counts(title: str, items: Any, prefix: str) -> list[str]:
        rows = [f"  {c.label.replace(prefix, '').replace('/', ' / ')}: {c.count}" for c in items]
        return [title, *(rows or ["  none"])]

    lines = counts("Live certificates by kind / registries:", response.issued, "CERTIFICATE_KIND_")
    lines = [line.replace("REGISTRY_", "") for line in lines]
    lines += counts("Denials given by Issue:", response.denials, "DENIAL_REASON_")
    lines += counts("Applications by status:", response.applications, "APPLICATION_STATUS_")
    by_category = counts(
        "Applications by category / status:",
        response.applications_by_category,
        "APPLICATION_CATEGORY_",
    )
    lines += [line.replace("APPLICATION_STATUS_", "") for line in by_category]
    if response.HasField("median_time_to_code"):
        median = response.median_time_to_code.ToTimedelta().total_seconds()
        with_code = response.applications_with_code
        lines.append(
            f"Median time from application to code: {_duration(median)} "
            f"(over {with_code} application{'' if with_code == 1 else 's'})"
        )
    else:
        lines.append("Median time from application to code: no application has a code yet")
    return "\n".join(lines)


@click.command()
@click.option("--since", type=click.DateTime(), help="Count from this UTC instant.")
@click.option("--until", type=click.DateTime(), help="Count until this UTC instant.")
@client_command
def stats(conn: Connection, since: datetime | None, until: datetime | None) -> None:
    """Counts of certificates, denials and applications, and the median time to a code."""
    request = pb.GetStatsRequest()
    if since is not None:
        request.since.FromDatetime(since.replace(tzinfo=UTC))
    if until is not None:
        request.until.FromDatetime(until.replace(tzinfo=UTC))
    response = conn.call(lambda stub, timeout: stub.GetStats(request, timeout=timeout))
    conn.emit(response, describe_stats(response))
