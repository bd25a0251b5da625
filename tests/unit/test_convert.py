"""Domain results to protobuf: the shapes partners read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from regfed.api import convert
from regfed.domain.model import MOSCOW, CertificateKind, DenialReason, Registry
from regfed.hcert.trust import trusted_key_from_certificate
from regfed.hcert.verify import Verdict, Verification
from regfed.service.ports import ApplicationCategory, ApplicationStatus
from regfed.service.stats import Stats
from regfed.v1 import certificate_service_pb2 as pb
from tests.hc1_reference import new_partner


def test_stats_labels_are_the_contracts_enum_names() -> None:
    """GetStats labels use the proto enum names, sorted, registries joined by '+'."""
    response = convert.stats(
        Stats(
            issued={
                (CertificateKind.TEST, frozenset({Registry.CITY})): 2,
                (CertificateKind.RECOVERY, frozenset({Registry.FEDERAL, Registry.CITY})): 1,
            },
            denials={DenialReason.NOT_FOUND: 5, DenialReason.ACTIVE_ILLNESS: 1},
            applications={},
            median_time_to_code=None,
            applications_with_code=0,
        )
    )
    assert [(c.label, c.count) for c in response.issued] == [
        ("CERTIFICATE_KIND_RECOVERY/REGISTRY_CITY+REGISTRY_FEDERAL", 1),
        ("CERTIFICATE_KIND_TEST/REGISTRY_CITY", 2),
    ]
    assert [(c.label, c.count) for c in response.denials] == [
        ("DENIAL_REASON_ACTIVE_ILLNESS", 1),
        ("DENIAL_REASON_NOT_FOUND", 5),
    ]


def test_timestamps_are_exact_to_the_microsecond() -> None:
    """The hand-made Timestamp conversion agrees with protobuf's own."""
    instant = datetime(2026, 11, 26, 12, 34, 56, 789012, tzinfo=UTC)
    ts = convert.timestamp(instant)
    assert ts.ToDatetime(tzinfo=UTC) == instant
    before_epoch = datetime(1955, 2, 28, 23, 59, 59, 1, tzinfo=UTC)
    assert convert.timestamp(before_epoch).ToDatetime(tzinfo=UTC) == before_epoch


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("ES256", pb.ALGORITHM_ES256),
        ("ES384", pb.ALGORITHM_ES384),
        ("ES512", pb.ALGORITHM_ES512),
        ("PS256", pb.ALGORITHM_PS256),
    ],
)
def test_trust_list_names_each_algorithm(algorithm: str, expected: int) -> None:
    """Every algorithm a trusted key may have reaches GetTrustList as its own enum value."""
    key = trusted_key_from_certificate(new_partner(algorithm).certificate, own=False)
    assert convert.trusted_key(key).algorithm == expected


def test_verify_response_keeps_valid_from_and_issued_at_apart() -> None:
    """valid_from carries the validity the certificate states, issued_at the code's iat."""
    valid_from = datetime(2021, 5, 1, tzinfo=MOSCOW)
    issued_at = datetime(2021, 7, 1, 9, 30, tzinfo=UTC)
    result = Verification(
        Verdict.VALID,
        kid=b"k" * 8,
        issuer="XX",
        issued_at=issued_at,
        valid_from=valid_from,
        expires_at=issued_at + timedelta(days=30),
        kind=CertificateKind.VACCINATION,
        uvci="URN:UVCI:01:XX:1",
        holder_name="A B",
        holder_birth_date="1970",
    )
    response = convert.verify_response(result, issued_at)
    assert response.valid_from.ToDatetime(tzinfo=UTC) == valid_from
    assert response.issued_at.ToDatetime(tzinfo=UTC) == issued_at
    unsigned = convert.verify_response(Verification(Verdict.MALFORMED, "bad"), issued_at)
    assert not unsigned.HasField("valid_from")
    assert not unsigned.HasField("issued_at")


def test_application_stats_by_status_and_by_category_and_status() -> None:
    """Applications are totalled by status, and broken down by category and status; the
    median is a Duration, absent when no application got a code."""
    vaccination, other = ApplicationCategory.VACCINATION_NOT_FOUND, ApplicationCategory.OTHER
    counts = {
        (vaccination, ApplicationStatus.ISSUED): 3,
        (other, ApplicationStatus.ISSUED): 1,
        (other, ApplicationStatus.PENDING): 2,
    }
    response = convert.stats(
        Stats({}, {}, counts, timedelta(hours=1, microseconds=5), applications_with_code=4)
    )
    assert [(c.label, c.count) for c in response.applications] == [
        ("APPLICATION_STATUS_ISSUED", 4),
        ("APPLICATION_STATUS_PENDING", 2),
    ]
    assert [c.label for c in response.applications_by_category] == [
        "APPLICATION_CATEGORY_OTHER/APPLICATION_STATUS_ISSUED",
        "APPLICATION_CATEGORY_OTHER/APPLICATION_STATUS_PENDING",
        "APPLICATION_CATEGORY_VACCINATION_NOT_FOUND/APPLICATION_STATUS_ISSUED",
    ]
    assert response.median_time_to_code.ToTimedelta() == timedelta(hours=1, microseconds=5)
    assert response.applications_with_code == 4
    assert not convert.stats(Stats({}, {}, {}, None, 0)).HasField("median_time_to_code")
