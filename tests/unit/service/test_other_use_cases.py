"""Revoke, Verify's revocation rule, the trust list and statistics, with fakes."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from regfed.domain.model import CertificateKind, DenialReason, Registry
from regfed.errors import NotFound
from regfed.hcert.verify import Verdict
from regfed.service.ports import CertificateRecord
from regfed.service.revoking import RevocationService
from regfed.service.stats import StatsService
from regfed.service.trustlist import TrustListService
from tests.unit.service.fakes import (
    NOW,
    FakeApplicationStore,
    FakeRevocations,
    FakeStore,
    FixedClock,
    StaticTrust,
    signing_key,
)
from tests.unit.service.test_issuing import QUERY, VACCINATED, World


def certificate(uvci: str, **changes: object) -> CertificateRecord:
    """A stored certificate without personal data."""
    values: dict[str, object] = {
        "uvci": uvci,
        "person_key": hashlib.sha256(uvci.encode()).digest(),
        "basis_fingerprint": bytes(32),
        "kind": CertificateKind.TEST,
        "valid_from": NOW,
        "valid_until": NOW + timedelta(days=3),
        "issued_at": NOW,
        "kid": bytes(8),
        "sources": frozenset({Registry.CITY}),
        "degraded": False,
    }
    values.update(changes)
    return CertificateRecord(**values)  # type: ignore[arg-type]


async def test_revoking_an_unknown_uvci_is_not_found() -> None:
    """A UVCI this service never issued cannot be revoked."""
    service = RevocationService(FakeStore(), FakeRevocations(), clock=FixedClock())
    with pytest.raises(NotFound):
        await service.revoke("URN:UVCI:01:RU:NOPE#A", "test")


async def test_revoking_twice_keeps_the_first_time_and_notes_it_at_once() -> None:
    """The first revocation's time stands; this process's Verify knows it without waiting."""
    store, revocations, clock = FakeStore(), FakeRevocations(), FixedClock()
    await store.record(certificate("URN:UVCI:01:RU:A#1"))
    service = RevocationService(store, revocations, clock=clock)
    first = await service.revoke("URN:UVCI:01:RU:A#1", "first")
    clock.advance(timedelta(hours=1))
    second = await service.revoke("URN:UVCI:01:RU:A#1", "second")
    assert second.revoked_at == first.revoked_at == NOW
    assert revocations.revoked_at("URN:UVCI:01:RU:A#1") == NOW


async def test_verify_as_of_an_instant_before_the_revocation_is_valid() -> None:
    """An audit of an earlier day sees the certificate as it stood then."""
    world = World()
    world.federation.answers = {Registry.CITY: VACCINATED}
    issued = await world.issuing.issue(QUERY)
    assert issued.certificate is not None
    world.clock.advance(timedelta(days=1))
    await world.revoking.revoke(issued.certificate.record.uvci, "fraud")
    before, _ = await world.verifying.verify(issued.certificate.qr_text, NOW)
    now, _ = await world.verifying.verify(issued.certificate.qr_text)
    assert (before.verdict, now.verdict) == (Verdict.VALID, Verdict.REVOKED)


async def test_trust_list_holds_the_keys_and_live_revocations_only() -> None:
    """Revoked UVCIs are listed as hashes until they expire; keys come from the source."""
    store, clock = FakeStore(), FixedClock()
    await store.record(certificate("URN:UVCI:01:RU:LIVE#1"))
    await store.record(certificate("URN:UVCI:01:RU:GONE#1", valid_until=NOW + timedelta(hours=1)))
    for uvci in ("URN:UVCI:01:RU:LIVE#1", "URN:UVCI:01:RU:GONE#1"):
        await store.revoke(uvci, "test", NOW)
    clock.advance(timedelta(hours=2))
    key = signing_key()
    view = await TrustListService(StaticTrust(key), store, clock=clock).trust_list()
    assert [k.kid for k in view.keys] == [key.kid]
    assert view.revoked_uvci_hashes == [hashlib.sha256(b"URN:UVCI:01:RU:LIVE#1").digest()[:16]]
    assert view.generated_at == clock.now


async def test_stats_count_live_certificates_by_kind_and_sources() -> None:
    """Revoked certificates leave the count; the set of sources is one group."""
    store = FakeStore()
    both = frozenset({Registry.CITY, Registry.FEDERAL})
    await store.record(certificate("URN:UVCI:01:RU:A#1", sources=both))
    await store.record(certificate("URN:UVCI:01:RU:B#1", sources=both))
    await store.record(certificate("URN:UVCI:01:RU:C#1"))
    await store.revoke("URN:UVCI:01:RU:C#1", "test", NOW)
    store.denials[DenialReason.NOT_FOUND] = 3
    stats = await StatsService(store, FakeApplicationStore()).stats()
    assert stats.issued == {(CertificateKind.TEST, both): 2}
    assert stats.denials == {DenialReason.NOT_FOUND: 3}
