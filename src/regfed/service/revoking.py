"""The Revoke use case: a certificate revoked in the store, at once in this process's
Verify, and in every other process's once PostgreSQL's notification arrives."""

from __future__ import annotations

from regfed.errors import NotFound
from regfed.service.audit import Actor
from regfed.service.ports import CertificateRecord, CertificateStore, Clock, RevocationList


class RevocationService:
    """Revokes certificates."""

    def __init__(
        self, store: CertificateStore, revocations: RevocationList, *, clock: Clock
    ) -> None:
        self._store = store
        self._revocations = revocations
        self._clock = clock

    async def revoke(self, uvci: str, reason: str, actor: Actor | None = None) -> CertificateRecord:
        """Revoke ``uvci`` for ``reason``; revoking again keeps the first time and reason.
        ``actor``: who asks, for the audit row written with the revocation.

        Raises NotFound for a UVCI this service never issued.
        """
        record = await self._store.revoke(uvci, reason, self._clock(), actor)
        if record is None or record.revoked_at is None:
            raise NotFound("no certificate with this UVCI")
        self._revocations.note(record.uvci, record.revoked_at)
        return record
