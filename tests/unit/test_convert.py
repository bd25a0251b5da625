"""Domain results to protobuf: the shapes partners read."""

from __future__ import annotations

from datetime import UTC, datetime

from regfed.api import convert
from regfed.domain.model import CertificateKind, DenialReason, Registry
from regfed.service.stats import Stats


def test_stats_labels_are_the_contracts_enum_names() -> None:
    """GetStats labels use the proto enum names, sorted, registries joined by '+'."""
    response = convert.stats(
        Stats(
            issued={
                (CertificateKind.TEST, frozenset({Registry.CITY})): 2,
                (CertificateKind.RECOVERY, frozenset({Registry.FEDERAL, Registry.CITY})): 1,
            },
            denials={DenialReason.NOT_FOUND: 5, DenialReason.ACTIVE_ILLNESS: 1},
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
