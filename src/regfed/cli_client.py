"""Client commands of ``regfed``: they call a running server over gRPC."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import grpc
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from regfed import qr
from regfed.extras import import_extra
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:  # the async stub type exists for type checkers only
    from regfed.v1.certificate_service_pb2_grpc import CertificateServiceAsyncStub as Stub

T = TypeVar("T")
DEFAULT_TARGET = "127.0.0.1:50051"
IMAGE_SUFFIXES = {".png": pb.QR_FORMAT_PNG, ".svg": pb.QR_FORMAT_SVG}


def _name(enum_type: Any, value: int, prefix: str) -> str:
    """An enum value's name without its prefix, e.g. VACCINATION."""
    return str(enum_type.Name(value)).removeprefix(prefix)


def _when(ts: timestamp_pb2.Timestamp) -> str:
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M UTC")


def describe_issue(response: pb.IssueResponse) -> str:
    """The outcome of an Issue call, in words."""
    lines: list[str] = []
    if response.outcome == pb.OUTCOME_ISSUED:
        cert = response.certificate
        lines += [
            f"ISSUED: {_name(pb.CertificateKind, cert.kind, 'CERTIFICATE_KIND_')} certificate",
            f"  UVCI:        {cert.uvci}",
            f"  valid:       {_when(cert.valid_from)} .. {_when(cert.valid_until)}",
            f"  key id:      {cert.key_id}",
        ]
        for event in cert.basis:
            source = _name(pb.Registry, event.source, "REGISTRY_")
            lines.append(
                f"  basis:       {event.description} ({source}, {_when(event.occurred_at)})"
            )
    else:
        denial = response.denial
        lines += [
            f"DENIED: {_name(pb.DenialReason, denial.reason, 'DENIAL_REASON_')}",
            f"  message:     {denial.message}",
            f"  hint:        {denial.hint}",
        ]
    for report in response.sources:
        registry = _name(pb.Registry, report.registry, "REGISTRY_")
        status = _name(pb.SourceStatus, report.status, "SOURCE_STATUS_")
        millis = report.latency.ToNanoseconds() / 1e6
        skipped = f", {report.skipped_events} events skipped" if report.skipped_events else ""
        if report.name_mismatch:
            skipped += ", the registry spells the name differently"
        lines.append(f"  source:      {registry} {status} in {millis:.1f} ms{skipped}")
    if response.degraded:
        lines.append("  DEGRADED: a registry did not answer; the answer rests on the other")
    return "\n".join(lines)


def describe_error(error: grpc.aio.AioRpcError) -> str:
    """A gRPC error in words, with its field violations."""
    lines = [f"error: {error.code().name}: {error.details()}"]
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            lines += [f"  {v.field}: {v.description}" for v in bad.field_violations]
    return "\n".join(lines)


def call_server(target: str, call: Callable[[Stub], Awaitable[T]]) -> T:
    """Run one call against the server at ``target``; an RPC error becomes a CLI error."""

    async def run() -> T:
        async with grpc.aio.insecure_channel(target) as channel:
            return await call(pb_grpc.CertificateServiceStub(channel))

    try:
        return asyncio.run(run())
    except grpc.aio.AioRpcError as error:
        raise click.ClickException(describe_error(error)) from None


@click.command()
@click.option("--target", default=DEFAULT_TARGET, show_default=True, help="Server host:port.")
@click.option("--last-name", required=True)
@click.option("--first-name", required=True)
@click.option("--middle-name", default="")
@click.option("--birth-date", required=True, help="YYYY-MM-DD")
@click.option("--snils", default="")
@click.option("--oms-policy", default="")
@click.option("--passport", default="")
@click.option(
    "--qr-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the QR image here (.png or .svg).",
)
@click.option("--no-qr", is_flag=True, help="Do not draw the QR code in the terminal.")
@click.option("--timeout", default=10.0, show_default=True, help="Deadline, seconds.")
def issue(
    target: str,
    qr_out: Path | None,
    no_qr: bool,
    timeout: float,
    **person: str,
) -> None:
    """Ask the server for a certificate and print the outcome."""
    qr_format = pb.QR_FORMAT_UNSPECIFIED
    if qr_out is not None:
        if qr_out.suffix.lower() not in IMAGE_SUFFIXES:
            raise click.BadParameter("must end in .png or .svg", param_hint="--qr-out")
        qr_format = IMAGE_SUFFIXES[qr_out.suffix.lower()]
    request = pb.IssueRequest(person=pb.Person(**person), qr_format=qr_format)
    response = call_server(target, lambda stub: stub.Issue(request, timeout=timeout))
    click.echo(describe_issue(response))
    if response.outcome != pb.OUTCOME_ISSUED:
        return
    click.echo(f"\n{response.certificate.qr_payload}\n")
    if not no_qr:
        click.echo(qr.render_terminal(response.certificate.qr_payload))
    if qr_out is not None:
        qr_out.write_bytes(response.certificate.qr_image)
        click.echo(f"QR image written to {qr_out}")


def describe_verify(response: pb.VerifyResponse) -> str:
    """A Verify verdict, in words."""
    verdict = _name(pb.Verdict, response.verdict, "VERDICT_")
    lines = [f"{verdict}" + (f": {response.detail}" if response.detail else "")]
    if response.uvci:
        lines += [
            f"  holder:      {response.holder_name} (born {response.holder_birth_date})",
            f"  kind:        {_name(pb.CertificateKind, response.kind, 'CERTIFICATE_KIND_')}",
            f"  UVCI:        {response.uvci}",
            f"  issuer:      {response.issuer}, key id {response.key_id}",
            f"  valid:       {_when(response.valid_from)} .. {_when(response.valid_until)}",
        ]
    lines.append(f"  checked at:  {_when(response.verified_at)}")
    return "\n".join(lines)


def read_qr_image(path: Path) -> str:
    """The text of the QR code in an image file (PNG, JPEG, ...)."""
    from PIL import Image, UnidentifiedImageError

    zxingcpp = import_extra("zxingcpp", extra="cli", purpose="reading a QR image (--image)")

    try:
        with Image.open(path) as image:
            results = zxingcpp.read_barcodes(image)
    except (OSError, UnidentifiedImageError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="--image") from None
    if not results:
        raise click.BadParameter(f"no QR code found in {path}", param_hint="--image")
    return str(results[0].text)


@click.command()
@click.argument("text", required=False)
@click.option(
    "--image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the code from a QR image instead.",
)
@click.option("--at", "at", type=click.DateTime(), help="Verify as of this UTC instant.")
@click.option("--target", default=DEFAULT_TARGET, show_default=True, help="Server host:port.")
@click.option("--timeout", default=10.0, show_default=True, help="Deadline, seconds.")
def verify(
    text: str | None, image: Path | None, at: datetime | None, target: str, timeout: float
) -> None:
    """Verify an HC1: code (the text, or --image) and print the verdict."""
    if (text is None) == (image is None):
        raise click.UsageError("give the HC1: text or --image, one of them")
    payload = read_qr_image(image) if image is not None else str(text)
    request = pb.VerifyRequest(qr_payload=payload)
    if at is not None:
        request.at.FromDatetime(at.replace(tzinfo=UTC))
    response = call_server(target, lambda stub: stub.Verify(request, timeout=timeout))
    click.echo(describe_verify(response))
    if response.verdict != pb.VERDICT_VALID:
        sys.exit(1)


def revoke_call(target: str, token: str, uvci: str, reason: str, timeout: float) -> str:
    """Revoke ``uvci`` on the server at ``target``; the revocation time, in words."""
    request = pb.RevokeRequest(uvci=uvci, reason=reason)
    metadata = (("authorization", f"Bearer {token}"),)
    response = call_server(
        target, lambda stub: stub.Revoke(request, timeout=timeout, metadata=metadata)
    )
    return f"REVOKED {response.uvci} at {_when(response.revoked_at)}"
