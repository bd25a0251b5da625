"""Domain results to protobuf messages. No logic: only shapes change here."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2

from regfed.domain.denials import DenialText, application_denial_text, denial_text
from regfed.domain.model import (
    CertificateKind,
    DenialReason,
    Event,
    IllnessEpisode,
    LabMethod,
    LabResult,
    Registry,
    Vaccination,
    moscow_midnight,
)
from regfed.federation.fanout import SourceOutcome, SourceStatus
from regfed.hcert.labels import ES256, ES384, ES512, PS256
from regfed.hcert.trust import TrustedKey
from regfed.hcert.verify import Verdict, Verification
from regfed.service.applications import ApplicationCertificate, ApplicationView
from regfed.service.issuing import IssuedCertificate, IssueResult
from regfed.service.ports import ApplicationCategory, ApplicationStatus
from regfed.service.stats import Stats
from regfed.service.trustlist import TrustListView
from regfed.v1 import certificate_service_pb2 as pb

KIND = {
    CertificateKind.VACCINATION: pb.CERTIFICATE_KIND_VACCINATION,
    CertificateKind.RECOVERY: pb.CERTIFICATE_KIND_RECOVERY,
    CertificateKind.TEST: pb.CERTIFICATE_KIND_TEST,
}
REGISTRY = {Registry.CITY: pb.REGISTRY_CITY, Registry.FEDERAL: pb.REGISTRY_FEDERAL}
SOURCE_STATUS = {
    SourceStatus.MATCHED: pb.SOURCE_STATUS_MATCHED,
    SourceStatus.NOT_FOUND: pb.SOURCE_STATUS_NOT_FOUND,
    SourceStatus.FAILED: pb.SOURCE_STATUS_FAILED,
    SourceStatus.TIMED_OUT: pb.SOURCE_STATUS_TIMED_OUT,
}
DENIAL_REASON = {
    DenialReason.NOT_FOUND: pb.DENIAL_REASON_NOT_FOUND,
    DenialReason.ACTIVE_ILLNESS: pb.DENIAL_REASON_ACTIVE_ILLNESS,
    DenialReason.INCOMPLETE_VACCINATION: pb.DENIAL_REASON_INCOMPLETE_VACCINATION,
    DenialReason.VACCINE_NOT_RECOGNISED: pb.DENIAL_REASON_VACCINE_NOT_RECOGNISED,
    DenialReason.BASIS_EXPIRED: pb.DENIAL_REASON_BASIS_EXPIRED,
    DenialReason.NO_RECORDS: pb.DENIAL_REASON_NO_RECORDS,
}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(instant: datetime) -> timestamp_pb2.Timestamp:
    """A protobuf Timestamp of an aware datetime (exact to the microsecond; cheaper than
    ``Timestamp.FromDatetime``, which shows in the Verify profile)."""
    delta = instant - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1_000
    )


def _duration(seconds: float | timedelta) -> duration_pb2.Duration:
    if isinstance(seconds, timedelta):
        return duration_pb2.Duration(
            seconds=seconds.days * 86_400 + seconds.seconds, nanos=seconds.microseconds * 1_000
        )
    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=int((seconds - whole) * 1e9))


def basis_event(event: Event) -> pb.BasisEvent:
    """One basis event, with the registry it came from."""
    if isinstance(event, Vaccination):
        return pb.BasisEvent(
            type=pb.BASIS_EVENT_TYPE_VACCINATION,
            source=REGISTRY[event.source],
            occurred_at=timestamp(moscow_midnight(event.day)),
            description=f"{event.product} dose {event.dose}",
        )
    if isinstance(event, IllnessEpisode):
        day = event.recovered_on or event.diagnosed_on
        return pb.BasisEvent(
            type=pb.BASIS_EVENT_TYPE_RECOVERY,
            source=REGISTRY[event.source],
            occurred_at=timestamp(moscow_midnight(day)),
            description=f"recovered, confirmed by {event.confirmation.value}",
        )
    assert isinstance(event, LabResult)
    antibodies = event.method is LabMethod.ELISA_IGG
    return pb.BasisEvent(
        type=pb.BASIS_EVENT_TYPE_ANTIBODIES if antibodies else pb.BASIS_EVENT_TYPE_PCR_TEST,
        source=REGISTRY[event.source],
        occurred_at=timestamp(event.sampled_at),
        description=(f"{event.method.value} {'positive' if event.positive else 'negative'}"),
    )


def source_report(outcome: SourceOutcome) -> pb.SourceReport:
    """How one registry answered."""
    return pb.SourceReport(
        registry=REGISTRY[outcome.registry],
        status=SOURCE_STATUS[outcome.status],
        latency=_duration(outcome.latency),
        skipped_events=outcome.record.skipped_events if outcome.record else 0,
    )


def certificate(issued: IssuedCertificate | ApplicationCertificate) -> pb.Certificate:
    """The Certificate message of an issued certificate (from Issue, or an application's)."""
    record = issued.record
    basis = issued.grant.basis if isinstance(issued, IssuedCertificate) else issued.basis
    message = pb.Certificate(
        uvci=record.uvci,
        kind=KIND[record.kind],
        valid_from=timestamp(record.valid_from),
        valid_until=timestamp(record.valid_until),
        issued_at=timestamp(record.issued_at),
        qr_payload=issued.qr_text,
        key_id=key_id(issued.kid),
        basis=[basis_event(e) for e in basis],
    )
    if isinstance(issued, IssuedCertificate):
        message.qr_image = issued.image
        message.qr_media_type = issued.image_media_type
    return message


def denial(reason: DenialReason, text: DenialText | None = None) -> pb.Denial:
    """A denial with its message and hint for the person (``text``, else Issue's)."""
    text = text or denial_text(reason)
    return pb.Denial(reason=DENIAL_REASON[reason], message=text.message, hint=text.hint)


def issue_response(result: IssueResult) -> pb.IssueResponse:
    """The IssueResponse of a use-case result."""
    response = pb.IssueResponse(
        sources=[source_report(s) for s in result.sources], degraded=result.degraded
    )
    if result.certificate is not None:
        response.outcome = pb.OUTCOME_ISSUED
        response.certificate.CopyFrom(certificate(result.certificate))
    else:
        assert result.denial is not None
        response.outcome = pb.OUTCOME_DENIED
        response.denial.CopyFrom(denial(result.denial))
    return response


APPLICATION_STATUS = {
    ApplicationStatus.PENDING: pb.APPLICATION_STATUS_PENDING,
    ApplicationStatus.ISSUED: pb.APPLICATION_STATUS_ISSUED,
    ApplicationStatus.EXPIRED: pb.APPLICATION_STATUS_EXPIRED,
}
APPLICATION_CATEGORY = {
    ApplicationCategory.VACCINATION_NOT_FOUND: pb.APPLICATION_CATEGORY_VACCINATION_NOT_FOUND,
    ApplicationCategory.ILLNESS_NOT_FOUND: pb.APPLICATION_CATEGORY_ILLNESS_NOT_FOUND,
    ApplicationCategory.OTHER: pb.APPLICATION_CATEGORY_OTHER,
}


def application(view: ApplicationView) -> pb.Application:
    """An application: where it stands, its last denial, its certificate once issued."""
    record = view.application
    message = pb.Application(
        application_id=str(record.id),
        status=APPLICATION_STATUS[record.status],
        category=APPLICATION_CATEGORY[record.category],
        submitted_at=timestamp(record.submitted_at),
        checks=record.checks,
    )
    for name in ("checked_at", "closed_at", "next_check_at"):
        instant = getattr(record, name)
        if instant is not None:
            getattr(message, name).CopyFrom(timestamp(instant))
    if record.denial is not None:
        message.denial.CopyFrom(denial(record.denial, application_denial_text(record.denial)))
    if view.certificate is not None:
        message.certificate.CopyFrom(certificate(view.certificate))
    return message


ALGORITHM = {
    ES256: pb.ALGORITHM_ES256,
    ES384: pb.ALGORITHM_ES384,
    ES512: pb.ALGORITHM_ES512,
    PS256: pb.ALGORITHM_PS256,
}
VERDICT = {
    Verdict.VALID: pb.VERDICT_VALID,
    Verdict.EXPIRED: pb.VERDICT_EXPIRED,
    Verdict.NOT_YET_VALID: pb.VERDICT_NOT_YET_VALID,
    Verdict.REVOKED: pb.VERDICT_REVOKED,
    Verdict.SIGNATURE_INVALID: pb.VERDICT_SIGNATURE_INVALID,
    Verdict.UNKNOWN_KEY: pb.VERDICT_UNKNOWN_KEY,
    Verdict.MALFORMED: pb.VERDICT_MALFORMED,
}


def key_id(kid: bytes) -> str:
    """A kid as the contract shows it: standard base64, padded. Inside regfed it is bytes."""
    return base64.b64encode(kid).decode("ascii")


def trusted_key(key: TrustedKey) -> pb.TrustedKey:
    """A trust-list entry."""
    entry = pb.TrustedKey(
        key_id=key_id(key.kid),
        algorithm=ALGORITHM.get(key.algorithm, pb.ALGORITHM_UNSPECIFIED),
        certificate=key.der,
        issuer=key.subject,
        own=key.own,
    )
    if key.not_before is not None:
        entry.not_before.CopyFrom(timestamp(key.not_before))
    if key.not_after is not None:
        entry.not_after.CopyFrom(timestamp(key.not_after))
    return entry


def verify_response(result: Verification, instant: datetime) -> pb.VerifyResponse:
    """A VerifyResponse; the holder's data only when the signature held."""
    response = pb.VerifyResponse(
        verdict=VERDICT[result.verdict],
        detail=result.detail,
        holder_name=result.holder_name or "",
        holder_birth_date=result.holder_birth_date or "",
        uvci=result.uvci or "",
        issuer=result.issuer or "",
        key_id=key_id(result.kid) if result.kid else "",
        verified_at=timestamp(instant),
    )
    if result.kind is not None:
        response.kind = KIND[result.kind]
    if result.valid_from is not None:
        response.valid_from.CopyFrom(timestamp(result.valid_from))
    if result.issued_at is not None:
        response.issued_at.CopyFrom(timestamp(result.issued_at))
    if result.expires_at is not None:
        response.valid_until.CopyFrom(timestamp(result.expires_at))
    return response


def trust_list(view: TrustListView) -> pb.GetTrustListResponse:
    """GetTrustList."""
    return pb.GetTrustListResponse(
        keys=[trusted_key(k) for k in view.keys],
        revoked_uvci_hashes=view.revoked_uvci_hashes,
        generated_at=timestamp(view.generated_at),
    )


def _sources_label(sources: frozenset[Registry]) -> str:
    """ "REGISTRY_CITY+REGISTRY_FEDERAL": the contract's names, in the contract's order."""
    return "+".join(pb.Registry.Name(r) for r in sorted(REGISTRY[s] for s in sources))


def stats(counts: Stats) -> pb.GetStatsResponse:
    """GetStats: issued by kind and sources ("CERTIFICATE_KIND_TEST/REGISTRY_CITY+..."),
    denials by reason, applications by status and by category and status, the median time
    to a code; labels are the contract's enum names, sorted."""
    issued = [
        pb.Count(
            label=f"{pb.CertificateKind.Name(KIND[kind])}/{_sources_label(sources)}",
            count=count,
        )
        for (kind, sources), count in counts.issued.items()
    ]
    denials = [
        pb.Count(label=pb.DenialReason.Name(DENIAL_REASON[reason]), count=count)
        for reason, count in counts.denials.items()
    ]
    by_status: dict[str, int] = {}
    by_category = []
    for (category, status), count in counts.applications.items():
        status_name = pb.ApplicationStatus.Name(APPLICATION_STATUS[status])
        by_status[status_name] = by_status.get(status_name, 0) + count
        category_name = pb.ApplicationCategory.Name(APPLICATION_CATEGORY[category])
        by_category.append(pb.Count(label=f"{category_name}/{status_name}", count=count))
    response = pb.GetStatsResponse(
        issued=sorted(issued, key=lambda c: c.label),
        denials=sorted(denials, key=lambda c: c.label),
        applications=[pb.Count(label=k, count=v) for k, v in sorted(by_status.items())],
        applications_by_category=sorted(by_category, key=lambda c: c.label),
        applications_with_code=counts.applications_with_code,
    )
    if counts.median_time_to_code is not None:
        response.median_time_to_code.CopyFrom(_duration(counts.median_time_to_code))
    return response
