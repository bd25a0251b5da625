"""Client commands of ``regfed``: they call a running server over gRPC.

Every client command takes ``--target`` (or ``REGFED_TARGET``), ``--timeout``, the TLS
options and ``--json`` (the response in protobuf's JSON mapping, for scripts), and exits
with one of the statuses below, so a script can tell a denial from a dead server.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click
import grpc
from google.protobuf import json_format, message, timestamp_pb2
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

EXIT_OK = 0  # done; for verify, the code is VALID
EXIT_NEGATIVE = 1  # the answer is no: denied, not valid, still pending
EXIT_BAD_INPUT = 2  # bad usage, or the server refused the input (INVALID_ARGUMENT)
EXIT_FAILED = 3  # the server could not be reached, or answered with an error

EXIT_STATUSES = """\b
Exit statuses of the client commands:
  0  success (for verify: the code is VALID)
  1  the answer is no: denied, not valid, not issued yet
  2  bad usage or bad input (the server's INVALID_ARGUMENT too)
  3  the server could not be reached, or answered with an error"""


class CallFailed(click.ClickException):
    """A call that got no answer: the server could not be reached or answered with an
    error. Printed to stderr as it is (it already says what failed), no prefix added."""

    exit_code = EXIT_FAILED

    def show(self, file: IO[Any] | None = None) -> None:
        """The message alone."""
        click.echo(self.format_message(), err=True)


class InputRefused(CallFailed):
    """The server refused the input (INVALID_ARGUMENT), or a local file is unusable."""

    exit_code = EXIT_BAD_INPUT


def _name(enum_type: Any, value: int, prefix: str) -> str:
    """An enum value's name without its prefix, e.g. VACCINATION."""
    return str(enum_type.Name(value)).removeprefix(prefix)


def when(ts: timestamp_pb2.Timestamp) -> str:
    """A timestamp in words, to the minute."""
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M UTC")


def describe_error(error: grpc.aio.AioRpcError) -> str:
    """A gRPC error in words, with its field violations."""
    lines = [f"{error.code().name}: {error.details()}"]
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            lines += [f"  {v.field}: {v.description}" for v in bad.field_violations]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Connection:
    """Where and how to reach the server, and how to print its answers."""

    target: str
    timeout: float
    as_json: bool
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    token_file: Path | None = None

    def metadata(self, token: str | None = None) -> tuple[tuple[str, str], ...]:
        """The call's credentials: ``token``, else the one in ``--token-file``, if any."""
        if token is None and self.token_file is not None:
            token = self.token_file.read_text(encoding="utf-8").strip()
        return (("authorization", f"Bearer {token}"),) if token else ()

    def _channel(self) -> grpc.aio.Channel:
        if self.tls_ca is None and self.tls_cert is None:
            return grpc.aio.insecure_channel(self.target)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.tls_ca.read_bytes() if self.tls_ca else None,
            private_key=self.tls_key.read_bytes() if self.tls_key else None,
            certificate_chain=self.tls_cert.read_bytes() if self.tls_cert else None,
        )
        return grpc.aio.secure_channel(self.target, credentials)

    def call(self, call: Callable[[Stub, float], Awaitable[T]]) -> T:
        """Run one call; an RPC error becomes a CallFailed with the right exit status."""

        async def run() -> T:
            async with self._channel() as channel:
                return await call(pb_grpc.CertificateServiceStub(channel), self.timeout)

        try:
            return asyncio.run(run())
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InputRefused(describe_error(error)) from None
            raise CallFailed(describe_error(error)) from None
        except OSError as exc:  # a TLS file that cannot be read
            raise InputRefused(f"cannot read a TLS file: {exc}") from None

    def emit(self, response: message.Message, words: str) -> None:
        """Print ``response``: as JSON with ``--json``, else ``words``."""
        if self.as_json:
            click.echo(json_format.MessageToJson(response, ensure_ascii=False, indent=2))
        else:
            click.echo(words)


def client_command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the connection options; the command receives ``conn: Connection``."""

    @click.option(
        "--target",
        envvar="REGFED_TARGET",
        default=DEFAULT_TARGET,
        show_default=True,
        help="Server host:port (REGFED_TARGET).",
    )
    @click.option("--timeout", default=10.0, show_default=True, help="Deadline, seconds.")
    @click.option("--json", "as_json", is_flag=True, help="Print the response as JSON.")
    @click.option(
        "--tls-ca",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="CA bundle to verify the server's certificate (turns TLS on).",
    )
    @click.option(
        "--tls-cert",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Client certificate chain, for mutual TLS.",
    )
    @click.option(
        "--tls-key",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Client private key, for mutual TLS.",
    )
    @click.option(
        "--token-file",
        envvar="REGFED_TOKEN_FILE",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A file holding a bearer token (REGFED_TOKEN_FILE), for a listener without a "
        "client CA.",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        target: str,
        timeout: float,
        as_json: bool,
        tls_ca: Path | None,
        tls_cert: Path | None,
        tls_key: Path | None,
        token_file: Path | None,
        **kwargs: Any,
    ) -> Any:
        if (tls_cert is None) != (tls_key is None):
            raise click.UsageError("--tls-cert and --tls-key go together")
        conn = Connection(target, timeout, as_json, tls_ca, tls_cert, tls_key, token_file)
        return func(*args, conn=conn, **kwargs)

    return wrapper


def describe_issue(response: pb.IssueResponse) -> str:
    """The outcome of an Issue call, in words."""
    lines: list[str] = []
    if response.outcome == pb.OUTCOME_ISSUED:
        lines += certificate_lines(response.certificate)
    else:
        lines += describe_denial(response.denial)
    for report in response.sources:
        registry = _name(pb.Registry, report.registry, "REGISTRY_")
        status = _name(pb.SourceStatus, report.status, "SOURCE_STATUS_")
        millis = report.latency.ToNanoseconds() / 1e6
        skipped = f", {report.skipped_events} events skipped" if report.skipped_events else ""
        lines.append(f"  source:      {registry} {status} in {millis:.1f} ms{skipped}")
    if response.degraded:
        lines.append("  DEGRADED: a registry did not answer; the answer rests on the other")
    return "\n".join(lines)


def certificate_lines(cert: pb.Certificate) -> list[str]:
    """An issued certificate, as lines."""
    lines = [
        f"ISSUED: {_name(pb.CertificateKind, cert.kind, 'CERTIFICATE_KIND_')} certificate",
        f"  UVCI:        {cert.uvci}",
        f"  valid:       {when(cert.valid_from)} .. {when(cert.valid_until)}",
        f"  key id:      {cert.key_id}",
    ]
    for event in cert.basis:
        source = _name(pb.Registry, event.source, "REGISTRY_")
        lines.append(f"  basis:       {event.description} ({source}, {when(event.occurred_at)})")
    return lines


def describe_denial(denial: pb.Denial) -> list[str]:
    """A denial's reason, message and hint, as lines."""
    return [
        f"DENIED: {_name(pb.DenialReason, denial.reason, 'DENIAL_REASON_')}",
        f"  message:     {denial.message}",
        f"  hint:        {denial.hint}",
    ]


def person_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The Person fields as options; the command receives ``person: pb.Person``."""

    @click.option("--last-name", required=True)
    @click.option("--first-name", required=True)
    @click.option("--middle-name", default="")
    @click.option("--birth-date", required=True, help="YYYY-MM-DD")
    @click.option("--snils", default="")
    @click.option("--oms-policy", default="")
    @click.option("--passport", default="")
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        last_name: str,
        first_name: str,
        middle_name: str,
        birth_date: str,
        snils: str,
        oms_policy: str,
        passport: str,
        **kwargs: Any,
    ) -> Any:
        person = pb.Person(
            last_name=last_name,
            first_name=first_name,
            middle_name=middle_name,
            birth_date=birth_date,
            snils=snils,
            oms_policy=oms_policy,
            passport=passport,
        )
        return func(*args, person=person, **kwargs)

    return wrapper


def show_qr(text: str) -> None:
    """The QR code in the terminal, only when standard output is one (not in a pipe)."""
    if sys.stdout.isatty():
        click.echo(qr.render_terminal(text))


@click.command()
@person_options
@click.option(
    "--qr-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the QR image here (.png or .svg).",
)
@click.option("--no-qr", is_flag=True, help="Do not draw the QR code in the terminal.")
@client_command
def issue(conn: Connection, person: pb.Person, qr_out: Path | None, no_qr: bool) -> None:
    """Ask the server for a certificate and print the outcome (exit 1 when denied)."""
    qr_format = pb.QR_FORMAT_UNSPECIFIED
    if qr_out is not None:
        if qr_out.suffix.lower() not in IMAGE_SUFFIXES:
            raise click.BadParameter("must end in .png or .svg", param_hint="--qr-out")
        qr_format = IMAGE_SUFFIXES[qr_out.suffix.lower()]
    request = pb.IssueRequest(person=person, qr_format=qr_format)
    response = conn.call(
        lambda stub, timeout: stub.Issue(request, timeout=timeout, metadata=conn.metadata())
    )
    issued = response.outcome == pb.OUTCOME_ISSUED
    words = describe_issue(response)
    if issued:
        words += f"\n\n{response.certificate.qr_payload}\n"
    conn.emit(response, words)
    if not issued:
        sys.exit(EXIT_NEGATIVE)
    if qr_out is not None:
        qr_out.write_bytes(response.certificate.qr_image)
        click.echo(f"QR image written to {qr_out}", err=True)
    if not no_qr and not conn.as_json:
        show_qr(response.certificate.qr_payload)


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
            f"  valid:       {when(response.valid_from)} .. {when(response.valid_until)}",
            f"  issued at:   {when(response.issued_at)}",
        ]
    lines.append(f"  checked at:  {when(response.verified_at)}")
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
@client_command
def verify(conn: Connection, text: str | None, image: Path | None, at: datetime | None) -> None:
    """Verify an HC1: code (the text, or --image) and print the verdict (exit 1 unless VALID)."""
    if (text is None) == (image is None):
        raise click.UsageError("give the HC1: text or --image, one of them")
    payload = read_qr_image(image) if image is not None else str(text)
    request = pb.VerifyRequest(qr_payload=payload)
    if at is not None:
        request.at.FromDatetime(at.replace(tzinfo=UTC))
    response = conn.call(
        lambda stub, timeout: stub.Verify(request, timeout=timeout, metadata=conn.metadata())
    )
    conn.emit(response, describe_verify(response))
    if response.verdict != pb.VERDICT_VALID:
        sys.exit(EXIT_NEGATIVE)


def revoke_call(conn: Connection, token: str | None, uvci: str, reason: str) -> None:
    """Revoke ``uvci`` (with the operator ``token`` when given) and print the revocation."""
    request = pb.RevokeRequest(uvci=uvci, reason=reason)
    metadata = conn.metadata(token)
    response = conn.call(
        lambda stub, timeout: stub.Revoke(request, timeout=timeout, metadata=metadata)
    )
    conn.emit(response, f"REVOKED {response.uvci} at {when(response.revoked_at)}")


@click.command("fetch")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the trust list into.",
)
@client_command
def trust_fetch(conn: Connection, out: Path) -> None:
    """Fetch the trust list for an offline verifier: one PEM per key, and the revoked UVCIs.

    Writes KID.pem for each key (KID in hex; ``own-`` before ours), and
    revoked-uvci-hashes.txt: one hex line per revoked, unexpired UVCI (the first 16 bytes
    of SHA-256 over its text).
    """
    from regfed.keystore.trustdir import pem_of

    response = conn.call(
        lambda stub, timeout: stub.GetTrustList(
            pb.GetTrustListRequest(), timeout=timeout, metadata=conn.metadata()
        )
    )
    out.mkdir(parents=True, exist_ok=True)
    for key in response.keys:
        kid = pb_key_hex(key.key_id)
        (out / f"{'own-' if key.own else ''}{kid}.pem").write_bytes(pem_of(key.certificate))
    hashes = "".join(h.hex() + "\n" for h in response.revoked_uvci_hashes)
    (out / "revoked-uvci-hashes.txt").write_text(hashes, encoding="ascii")
    conn.emit(
        response,
        f"{len(response.keys)} keys and {len(response.revoked_uvci_hashes)} revoked UVCI "
        f"hashes written to {out} (as of {when(response.generated_at)})",
    )


def pb_key_hex(key_id: str) -> str:
    """A trust-list key id (base64) as hex, safe in a file name."""
    return base64.b64decode(key_id).hex()
