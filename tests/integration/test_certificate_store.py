"""CertificateStore against a real PostgreSQL: idempotent issuance, revocation, stats."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from regfed.domain.model import CertificateKind, DenialReason, Registry
from regfed.errors import StoreUnavailable
from regfed.service.personkey import PersonKeyer
from regfed.service.ports import CertificateRecord
from regfed.store.certificates import CertificateStore, DuplicateUvciError

pytestmark = pytest.mark.postgres

CreateDatabase = Callable[..., Awaitable[str]]

NOW = datetime(2021, 7, 1, 9, 30, tzinfo=UTC)
KEYER = PersonKeyer(secrets.token_bytes(32))


def person(snils: str = "11223344595") -> bytes:
    """A person key, made the only way tests may make one: through PersonKeyer."""
    return KEYER.person_key(snils=snils, oms_policy=None, passport=None)


def basis(*parts: str) -> bytes:
    """A basis fingerprint through PersonKeyer."""
    return KEYER.fingerprint(*(parts or ("vaccination", "Gam-COVID-Vac", "2021-06-01")))


def candidate(person_key: bytes, basis_fingerprint: bytes, **changes: Any) -> CertificateRecord:
    """A fresh candidate certificate with a unique UVCI."""
    record = CertificateRecord(
        uvci="URN:UVCI:01:RU:" + secrets.token_hex(10).upper(),
        person_key=person_key,
        basis_fingerprint=basis_fingerprint,
        kind=CertificateKind.VACCINATION,
        valid_from=NOW - timedelta(days=30),
        valid_until=NOW + timedelta(days=335),
        issued_at=NOW,
        kid=bytes(range(8)),
        sources=frozenset({Registry.CITY, Registry.FEDERAL}),
        degraded=False,
    )
    return replace(record, **changes)


async def count_rows(pool: asyncpg.Pool) -> int:
    """The number of certificate rows."""
    value = await pool.fetchval("SELECT count(*) FROM certificates")
    assert isinstance(value, int)
    return value


async def test_record_inserts_and_round_trips(store: CertificateStore) -> None:
    """A new candidate is stored and read back field for field."""
    new = candidate(person(), basis(), degraded=True, sources=frozenset({Registry.FEDERAL}))
    assert await store.record(new) == new
    assert await store.get(new.uvci) == new
    assert await store.find_current(new.person_key, new.basis_fingerprint) == new


async def test_record_returns_the_existing_certificate(
    store: CertificateStore, pool: asyncpg.Pool
) -> None:
    """The same person and basis get the first certificate back, not a new one."""
    first = await store.record(candidate(person(), basis()))
    later = candidate(person(), basis(), issued_at=NOW + timedelta(hours=1), kid=b"other-kd")
    again = await store.record(later)
    assert again == first
    assert again.uvci != later.uvci
    assert await count_rows(pool) == 1


async def test_different_basis_gives_a_new_certificate(
    store: CertificateStore, pool: asyncpg.Pool
) -> None:
    """Another basis (or another person) is another certificate."""
    first = await store.record(candidate(person(), basis()))
    boosted = await store.record(candidate(person(), basis("vaccination", "x", "2021-12-01")))
    someone_else = await store.record(candidate(person("08765430300"), basis()))
    assert len({first.uvci, boosted.uvci, someone_else.uvci}) == 3
    assert await count_rows(pool) == 3


async def test_concurrent_identical_requests_create_one_row(
    store: CertificateStore, pool: asyncpg.Pool
) -> None:
    """Twenty identical requests at once all get the same certificate; one row exists."""
    for round_ in range(3):
        key, fingerprint = person(), basis("round", str(round_))
        candidates = [candidate(key, fingerprint) for _ in range(20)]
        results = await asyncio.gather(*(store.record(c) for c in candidates))
        uvcis = {result.uvci for result in results}
        assert len(uvcis) == 1
        assert uvcis <= {c.uvci for c in candidates}
        rows = await pool.fetch(
            "SELECT uvci FROM certificates WHERE person_key = $1 AND basis_fingerprint = $2",
            key,
            fingerprint,
        )
        assert [r["uvci"] for r in rows] == list(uvcis)
    assert await count_rows(pool) == 3


async def test_revoked_certificate_is_not_the_idempotent_answer(store: CertificateStore) -> None:
    """After revocation, the same person and basis get a new certificate."""
    first = await store.record(candidate(person(), basis()))
    revoked = await store.revoke(first.uvci, "key compromised", NOW + timedelta(days=1))
    assert revoked is not None
    assert revoked.revoked_at == NOW + timedelta(days=1)
    assert revoked.revocation_reason == "key compromised"
    assert await store.find_current(first.person_key, first.basis_fingerprint) is None

    second = await store.record(candidate(person(), basis()))
    assert second.uvci != first.uvci
    assert second.revoked_at is None
    old = await store.get(first.uvci)
    assert old is not None
    assert old.revoked
    assert old.revoked_at == NOW + timedelta(days=1)
    assert await store.find_current(first.person_key, first.basis_fingerprint) == second


async def test_revoking_twice_keeps_the_first_revocation(store: CertificateStore) -> None:
    """A second revocation changes neither the time nor the reason."""
    cert = await store.record(candidate(person(), basis()))
    first = await store.revoke(cert.uvci, "first", NOW + timedelta(days=1))
    second = await store.revoke(cert.uvci, "second", NOW + timedelta(days=2))
    assert first is not None
    assert second == first
    assert second.revocation_reason == "first"


async def test_concurrent_revocations_keep_one(store: CertificateStore) -> None:
    """Racing revocations all report the same single revocation."""
    cert = await store.record(candidate(person(), basis()))
    results = await asyncio.gather(
        *(store.revoke(cert.uvci, f"r{i}", NOW + timedelta(minutes=i)) for i in range(10))
    )
    assert all(r is not None for r in results)
    assert len({(r.revoked_at, r.revocation_reason) for r in results if r is not None}) == 1


async def test_unknown_uvci(store: CertificateStore) -> None:
    """get and revoke of an unknown UVCI give None."""
    assert await store.get("URN:UVCI:01:RU:NOPE") is None
    assert await store.revoke("URN:UVCI:01:RU:NOPE", "why", NOW) is None


async def test_uvci_collision_is_a_store_error(store: CertificateStore) -> None:
    """A candidate reusing another certificate's UVCI is refused as DuplicateUvciError."""
    first = await store.record(candidate(person(), basis()))
    clash = candidate(person("08765430300"), basis(), uvci=first.uvci)
    with pytest.raises(DuplicateUvciError) as caught:
        await store.record(clash)
    assert isinstance(caught.value, StoreUnavailable)
    assert "INSERT" not in str(caught.value)


async def test_revoked_candidate_is_refused(store: CertificateStore) -> None:
    """record() only takes unrevoked candidates."""
    with pytest.raises(ValueError, match="unrevoked"):
        await store.record(candidate(person(), basis(), revoked_at=NOW))


def test_record_validates_its_fields() -> None:
    """Naive times, inverted validity and raw identifiers as keys are refused."""
    key, fingerprint = person(), basis()
    with pytest.raises(ValueError, match="aware"):
        candidate(key, fingerprint, issued_at=datetime(2021, 7, 1))
    with pytest.raises(ValueError, match="after"):
        candidate(key, fingerprint, valid_until=NOW - timedelta(days=60))
    with pytest.raises(ValueError, match="32-byte"):
        candidate(b"11223344595", fingerprint)


async def test_closed_pool_raises_store_error(create_database: CreateDatabase) -> None:
    """Every operation on a closed pool fails as StoreUnavailable, without SQL in the message."""
    dsn = await create_database()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    await pool.close()
    store = CertificateStore(pool)
    calls: list[Awaitable[object]] = [
        store.get("URN:UVCI:01:RU:X"),
        store.find_current(person(), basis()),
        store.record(candidate(person(), basis())),
        store.revoke("URN:UVCI:01:RU:X", "r", NOW),
        store.count_denial(DenialReason.NOT_FOUND, date(2021, 7, 1)),
        store.denial_counts(),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable) as caught:
            await call
        assert "SELECT" not in str(caught.value)
        assert "INSERT" not in str(caught.value)


async def test_missing_schema_is_a_store_error(create_database: CreateDatabase) -> None:
    """A database without the schema fails as StoreUnavailable naming the error class only."""
    dsn = await create_database()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        with pytest.raises(StoreUnavailable, match="UndefinedTableError") as caught:
            await CertificateStore(pool).get("URN:UVCI:01:RU:X")
        assert "certificates" not in str(caught.value)
    finally:
        await pool.close()


async def test_cancellation_is_not_swallowed(store: CertificateStore, pool: asyncpg.Pool) -> None:
    """Cancelling a store call raises CancelledError, not StoreUnavailable."""
    task = asyncio.create_task(store.count_denial(DenialReason.NOT_FOUND, date(2021, 7, 1)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_denial_counts_accumulate(store: CertificateStore) -> None:
    """Denials add up per reason and day; ranges select days."""
    day1, day2 = date(2021, 7, 1), date(2021, 7, 2)
    await asyncio.gather(
        *(store.count_denial(DenialReason.NOT_FOUND, day1) for _ in range(5)),
        store.count_denial(DenialReason.NOT_FOUND, day2),
        store.count_denial(DenialReason.ACTIVE_ILLNESS, day2),
    )
    assert await store.denial_counts() == {
        DenialReason.NOT_FOUND: 6,
        DenialReason.ACTIVE_ILLNESS: 1,
    }
    assert await store.denial_counts(since=day2) == {
        DenialReason.NOT_FOUND: 1,
        DenialReason.ACTIVE_ILLNESS: 1,
    }
    assert await store.denial_counts(until=day1) == {DenialReason.NOT_FOUND: 5}
