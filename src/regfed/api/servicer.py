"""CertificateService: thin servicers — validate and convert, call a use case, convert back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc

from regfed.api import convert
from regfed.api.auth import OperatorAuth
from regfed.api.errors import rpc_boundary
from regfed.api.validation import (
    FieldViolation,
    InvalidRequest,
    person_query,
    revocation,
    verify_payload,
)
from regfed.domain.model import moscow_date
from regfed.issuance import ImageFormat, IssueService
from regfed.store.certificates import CertificateStore
from regfed.store.revocations import RevocationCache
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from regfed.verification import TrustSource, VerifyService

Context = grpc.aio.ServicerContext[Any, Any]

IMAGE_FORMAT = {
    pb.QR_FORMAT_UNSPECIFIED: None,
    pb.QR_FORMAT_PNG: ImageFormat.PNG,
    pb.QR_FORMAT_SVG: ImageFormat.SVG,
}


class CertificateServicer(pb_grpc.CertificateServiceServicer):
    """The regfed.v1.CertificateService RPCs."""

    def __init__(
        self,
        *,
        issuance: IssueService,
        verification: VerifyService,
        trust: TrustSource,
        store: CertificateStore,
        revocations: RevocationCache,
        operator: OperatorAuth,
        clock: Callable[[], datetime],
    ) -> None:
        self._issuance = issuance
        self._verification = verification
        self._trust = trust
        self._store = store
        self._revocations = revocations
        self._operator = operator
        self._clock = clock

    @rpc_boundary
    async def Issue(self, request: pb.IssueRequest, context: Context) -> pb.IssueResponse:  # noqa: N802
        """Issue a certificate, or say why not."""
        if request.qr_format not in IMAGE_FORMAT:
            raise InvalidRequest([FieldViolation("qr_format", "unknown QR format")])
        query = person_query(request.person, moscow_date(self._clock()))
        image = IMAGE_FORMAT[request.qr_format]
        result = await self._issuance.issue(query, remaining=context.time_remaining(), image=image)
        return convert.issue_response(result)

    @rpc_boundary
    async def Verify(self, request: pb.VerifyRequest, context: Context) -> pb.VerifyResponse:  # noqa: N802
        """Give any scanned text a verdict."""
        text = verify_payload(request.qr_payload)
        at = request.at.ToDatetime(tzinfo=UTC) if request.HasField("at") else None
        result, instant = self._verification.verify(text, at)
        return convert.verify_response(result, instant)

    @rpc_boundary
    async def GetTrustList(  # noqa: N802
        self, request: pb.GetTrustListRequest, context: Context
    ) -> pb.GetTrustListResponse:
        """Every public key a verifier needs, and the hashes of our revoked UVCIs."""
        now = self._clock()
        return pb.GetTrustListResponse(
            keys=[convert.trusted_key(k) for k in self._trust.current().keys],
            revoked_uvci_hashes=await self._store.revoked_uvci_hashes(now),
            generated_at=convert.timestamp(now),
        )

    @rpc_boundary
    async def Revoke(self, request: pb.RevokeRequest, context: Context) -> pb.RevokeResponse:  # noqa: N802
        """Revoke a certificate (operators only)."""
        await self._operator.require(context)
        uvci, reason = revocation(request.uvci, request.reason)
        record = await self._store.revoke(uvci, reason, self._clock())
        if record is None or record.revoked_at is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no certificate with this UVCI")
            raise AssertionError("abort returned")  # pragma: no cover
        self._revocations.note(record.uvci, record.revoked_at)
        return pb.RevokeResponse(uvci=record.uvci, revoked_at=convert.timestamp(record.revoked_at))

    async def SubmitApplication(  # noqa: N802
        self, request: pb.SubmitApplicationRequest, context: Context
    ) -> pb.Application:
        """Not served yet."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "applications are not served yet")

    async def GetApplication(  # noqa: N802
        self, request: pb.GetApplicationRequest, context: Context
    ) -> pb.Application:
        """Not served yet."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "applications are not served yet")

    @rpc_boundary
    async def GetStats(self, request: pb.GetStatsRequest, context: Context) -> pb.GetStatsResponse:  # noqa: N802
        """Counts of live certificates and of denials (denials reach the store in batches,
        every few seconds)."""
        issued = await self._store.issued_counts()
        denials = await self._store.denial_counts()
        return convert.stats(issued, denials)
