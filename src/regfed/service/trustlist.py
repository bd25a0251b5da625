"""The GetTrustList use case: what an offline verifier needs to check our codes and the
partners' — every trusted key, and the hashes of our revoked, unexpired UVCIs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from regfed.hcert.trust import TrustedKey
from regfed.service.ports import CertificateStore, Clock, TrustSource


@dataclass(frozen=True, slots=True)
class TrustListView:
    """The trust list as of ``generated_at``."""

    keys: tuple[TrustedKey, ...]
    revoked_uvci_hashes: list[bytes]
    generated_at: datetime


class TrustListService:
    """Publishes the trust list."""

    def __init__(self, trust: TrustSource, store: CertificateStore, *, clock: Clock) -> None:
        self._trust = trust
        self._store = store
        self._clock = clock

    async def trust_list(self) -> TrustListView:
        """Every trusted key (own keys first) and the revoked UVCIs' hashes, now."""
        now = self._clock()
        return TrustListView(
            keys=self._trust.current().keys,
            revoked_uvci_hashes=await self._store.revoked_uvci_hashes(now),
            generated_at=now,
        )
