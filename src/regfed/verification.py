"""The Verify use case and the trust it rests on.

The strict decoding and signature rules live in ``hcert.verify`` (a pure function); this
module adds what needs the outside world: our own keys and the partners' certificates
(reloaded when the trust folder changes, so ``regfed trust add`` takes effect without a
restart) and our revocations (kept in memory, see ``store.revocations``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from regfed.hcert.trust import TrustList, load_trust_dir, trusted_key_from_der
from regfed.hcert.verify import Verdict, Verification, verify_hc1
from regfed.store.revocations import RevocationCache

log = logging.getLogger(__name__)

# Verdicts for which the signature held, so the UVCI inside is ours to look up.
_SIGNED = frozenset({Verdict.VALID, Verdict.EXPIRED, Verdict.NOT_YET_VALID})


class TrustSource:
    """Our own signing certificates plus the partners' from the trust folder."""

    def __init__(self, own: Sequence[x509.Certificate], partner_dir: Path | None) -> None:
        # Our keys are loaded once at start (rotation is a restart); partners' may change.
        self._own = [
            trusted_key_from_der(c.public_bytes(Encoding.DER), own=True, source="keys") for c in own
        ]
        self._partner_dir = partner_dir
        self._partner_stamp: int | None = None
        self._list = TrustList(self._own)

    def _dir_stamp(self) -> int | None:
        try:
            return None if self._partner_dir is None else self._partner_dir.stat().st_mtime_ns
        except OSError:
            return None

    def current(self) -> TrustList:
        """The trust list now, rebuilt only when the partner folder changed.

        ``trust add`` writes a new file by rename, which changes the folder's mtime: one
        stat per call is the whole cost of noticing.
        """
        stamp = self._dir_stamp()
        if stamp != self._partner_stamp and self._partner_dir is not None:
            loaded = load_trust_dir(self._partner_dir)
            for problem in loaded.problems:
                log.warning("trust folder: %s", problem)
            self._list = TrustList([*self._own, *loaded.keys])
            self._partner_stamp = stamp
        return self._list


class VerifyService:
    """Verifies scanned codes: signature, validity, and our own revocations."""

    def __init__(
        self,
        trust: TrustSource,
        revocations: RevocationCache,
        *,
        clock: Callable[[], datetime],
        clock_skew: timedelta,
    ) -> None:
        self._trust = trust
        self._revocations = revocations
        self._clock = clock
        self._skew = clock_skew

    def verify(self, text: str, at: datetime | None = None) -> tuple[Verification, datetime]:
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
