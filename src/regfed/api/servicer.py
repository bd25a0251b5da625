"""CertificateService: thin servicers — validate and convert, call one use case, convert back.

Failures are raised as ``regfed.errors`` and mapped to statuses by ``api.errors`` alone.
"""

from __future__ import annotations

from typing import Any

import grpc

from regfed import deadlines, logs
from regfed.api import auth, convert
from regfed.api.errors import rpc_boundary
from regfed.api.validation import (
    application_id,
    application_submission,
    person_query,
    revocation,
    stats_window,
    verify_at,
    verify_payload,
)
from regfed.domain.model import moscow_date
from regfed.errors import FieldViolation, InvalidRequest
from regfed.service.applications import ApplicationService
from regfed.service.audit import Actor
from regfed.service.issuing import ImageFormat, IssueService
from regfed.service.ports import Clock
from regfed.service.revoking import RevocationService
from regfed.service.stats import StatsService
from regfed.service.trustlist import TrustListService
from regfed.service.verifying import VerifyService
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
        *,
        issuance: IssueService,
        applications: ApplicationService,
        verification: VerifyService,
        trust_list: TrustListService,
        revocation: RevocationService,
        stats: StatsService,
        clock: Clock,
    ) -> None:
        self._issuance = issuance
        self._applications = applications
        self._verification = verification
        self._trust_list = trust_list
        self._revocation = revocation
        self._stats = stats
        self._clock = clock

    @rpc_boundary
    async def Issue(self, request: pb.IssueRequest, context: Context) -> pb.IssueResponse:  # noqa: N802
        """Issue a certificate, or say why not."""
        if request.qr_format not in IMAGE_FORMAT:
            raise InvalidRequest([FieldViolation("qr_format", "unknown QR format")])
        query = person_query(request.person, moscow_date(self._clock()))
        image = IMAGE_FORMAT[request.qr_format]
        # The caller's deadline, or the default one for a caller without (api/limits.py).
        result = await self._issuance.issue(
            query, remaining=deadlines.remaining(), image=image, actor=_actor()
        )
        return convert.issue_response(result)

    @rpc_boundary
    async def Verify(self, request: pb.VerifyRequest, context: Context) -> pb.VerifyResponse:  # noqa: N802
        """Give any scanned text a verdict."""
        text = verify_payload(request.qr_payload)
        at = verify_at(request.at) if request.HasField("at") else None
        result, instant = await self._verification.verify(text, at)
        return convert.verify_response(result, instant)

    @rpc_boundary
    async def GetTrustList(  # noqa: N802
        self, request: pb.GetTrustListRequest, context: Context
    ) -> pb.GetTrustListResponse:
        """Every public key a verifier needs, and the hashes of our revoked UVCIs."""
        return convert.trust_list(await self._trust_list.trust_list())

    @rpc_boundary
    async def Revoke(self, request: pb.RevokeRequest, context: Context) -> pb.RevokeResponse:  # noqa: N802
        """Revoke a certificate (operators only: the access interceptor sees to it)."""
        uvci, reason = revocation(request.uvci, request.reason)
        record = await self._revocation.revoke(uvci, reason, _actor())
        assert record.revoked_at is not None  # the use case returns it revoked
        return pb.RevokeResponse(uvci=record.uvci, revoked_at=convert.timestamp(record.revoked_at))

    @rpc_boundary
    async def SubmitApplication(  # noqa: N802
        self, request: pb.SubmitApplicationRequest, context: Context
    ) -> pb.Application:
        """Record an application, asking the registries at once: ISSUED or PENDING."""
        query, contact, category = application_submission(request, moscow_date(self._clock()))
        view = await self._applications.submit(
            query,
            contact=contact,
            category=category,
            remaining=deadlines.remaining(),
            actor=_actor(),
        )
        return convert.application(view)

    @rpc_boundary
    async def GetApplication(  # noqa: N802
        self, request: pb.GetApplicationRequest, context: Context
    ) -> pb.Application:
        """An application's status, and its certificate once issued."""
        view = await self._applications.get(application_id(request.application_id))
        return convert.application(view)

    @rpc_boundary
    async def GetStats(self, request: pb.GetStatsRequest, context: Context) -> pb.GetStatsResponse:  # noqa: N802
        """Counts of live certificates, denials (they reach the store in batches, every few
        seconds) and applications, over an optional window."""
        since, until = stats_window(request)
        return convert.stats(await self._stats.stats(since, until))


def _actor() -> Actor:
    """The current call's caller and request id, for the audit trail."""
    caller = auth.current.get()
    return Actor(caller.identity, caller.role, logs.request_id.get())
