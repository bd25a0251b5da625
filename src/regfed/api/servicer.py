"""CertificateService: thin servicers — validate and convert, call a use case, convert back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import grpc
from cryptography import x509

from regfed.api import convert
from regfed.api.errors import rpc_boundary
from regfed.api.validation import FieldViolation, InvalidRequest, person_query
from regfed.domain.model import moscow_date
from regfed.issuance import ImageFormat, IssueService
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc

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
        issuance: IssueService,
        own_certificates: Callable[[], Sequence[x509.Certificate]],
        clock: Callable[[], datetime],
    ) -> None:
        self._issuance = issuance
        self._own_certificates = own_certificates
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
    async def GetTrustList(  # noqa: N802
        self, request: pb.GetTrustListRequest, context: Context
    ) -> pb.GetTrustListResponse:
        """Every public key a verifier needs."""
        return pb.GetTrustListResponse(
            keys=[convert.trusted_key(c, own=True) for c in self._own_certificates()]
        )

    async def Verify(self, request: pb.VerifyRequest, context: Context) -> pb.VerifyResponse:  # noqa: N802
        """Not served yet."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Verify is not served yet")

    async def Revoke(self, request: pb.RevokeRequest, context: Context) -> pb.RevokeResponse:  # noqa: N802
        """Not served yet."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Revoke is not served yet")

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

    async def GetStats(self, request: pb.GetStatsRequest, context: Context) -> pb.GetStatsResponse:  # noqa: N802
        """Not served yet."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "GetStats is not served yet")
