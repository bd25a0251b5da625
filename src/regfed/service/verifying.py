"""The Verify use case: the strict rules of ``hcert.verify`` against the current trust
list, then our own revocations.

The decoding and signature rules are a pure function (``hcert.verify.verify_hc1``); this
adds what changes while the service runs: the trust list (partners' certificates are
re-read when the trust folder changes) and the revocations this service made.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from regfed.hcert.verify import Verdict, Verification, verify_hc1
from regfed.service.ports import Clock, RevocationList, TrustSource

# Verdicts for which the signature held, so the UVCI inside is ours to look up.
_SIGNED = frozenset({Verdict.VALID, Verdict.EXPIRED, Verdict.NOT_YET_VALID})


class VerifyService:
    """Verifies scanned codes: signature, validity, and our own revocations."""

    def __init__(
        self,
        trust: TrustSource,
        revocations: RevocationList,
        *,
        clock: Clock,
        clock_skew: timedelta,
    ) -> None:
        self._trust = trust
        self._revocations = revocations
        self._clock = clock
        self._skew = clock_skew

    async def verify(self, text: str, at: datetime | None = None) -> tuple[Verification, datetime]:
        """The verdict for ``text`` as of ``at`` (default now), and the instant used.

        CPU only: the trust list and the revocations are in memory.
        """
        instant = at or self._clock()
        result = verify_hc1(text, self._trust.current(), instant, clock_skew=self._skew)
        if result.verdict in _SIGNED and result.key is not None and result.key.own and result.uvci:
            revoked_at = self._revocations.revoked_at(result.uvci)
            # Revoked as of the instant asked about: an audit of an earlier day sees the
            # certificate as it stood then.
            if revoked_at is not None and revoked_at <= instant:
                result = replace(result, verdict=Verdict.REVOKED, detail="revoked by its issuer")
        return result, instant
