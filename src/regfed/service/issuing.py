"""The Issue use case: registries -> policy -> store -> signed code (-> QR image).

A denial is an answer, not an error; a denial that a registry which did not answer could
overturn is never given (:class:`~regfed.errors.RegistriesUnavailable` instead), and
``ACTIVE_ILLNESS`` stands on its own.

Idempotent without keeping personal data: the store keeps only a keyed hash of the person
and a fingerprint of everything the payload says; the same fingerprint yields the same
UVCI and issued-at, and deterministic ECDSA (RFC 6979) re-signs it to byte-identical text.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from regfed import qr
from regfed.domain.model import (
    DenialReason,
    Event,
    IllnessEpisode,
    LabResult,
    PersonQuery,
    PersonRecord,
    Vaccination,
    moscow_date,
)
from regfed.domain.policy import Denial, Grant, PolicyConfig, decide
from regfed.errors import RegistriesUnavailable
from regfed.federation.fanout import FederatedLookup, SourceOutcome
from regfed.hcert.payload import Hcert, build_hcert, new_uvci
from regfed.service.audit import Actor
from regfed.service.personkey import PersonKeyer
from regfed.service.ports import (
    CertificateRecord,
    CertificateStore,
    Clock,
    DenialTally,
    Lookup,
    Signer,
    utc_now,
)

log = logging.getLogger(__name__)


class ImageFormat(enum.Enum):
    """QR image formats."""

    PNG = qr.PNG_MEDIA_TYPE
    SVG = qr.SVG_MEDIA_TYPE


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A signed code and what it rests on."""

    record: CertificateRecord
    grant: Grant
    qr_text: str
    kid: bytes  # the key that signed this code
    hcert: Hcert  # the map signed: with the record, enough to re-sign the same code
    image: bytes = b""
    image_media_type: str = ""


@dataclass(frozen=True, slots=True)
class IssueResult:
    """The answer to one Issue call: a certificate or a denial, and where the data came from."""

    sources: tuple[SourceOutcome, ...]
    degraded: bool
    certificate: IssuedCertificate | None = None
    denial: DenialReason | None = None


def _event_part(event: Event) -> str:
    """An unambiguous text for one basis event (its source is not part of the payload)."""
    if isinstance(event, Vaccination):
        return f"v|{event.product}|{event.dose}|{event.day.isoformat()}"
    if isinstance(event, IllnessEpisode):
        recovered = event.recovered_on.isoformat() if event.recovered_on else ""
        return f"e|{event.diagnosed_on.isoformat()}|{event.confirmation.value}|{recovered}"
    assert isinstance(event, LabResult)
    return (
        f"l|{event.method.value}|{int(event.positive)}|"
        f"{event.sampled_at.astimezone(UTC).isoformat()}|{event.laboratory}"
    )


class IssueService:
    """Issues certificates: the composition of federation, policy, store and signer."""

    def __init__(
        self,
        *,
        federation: Lookup,
        policy: PolicyConfig,
        store: CertificateStore,
        denials: DenialTally,
        signer: Signer,
        keyer: PersonKeyer,
        clock: Clock = utc_now,
    ) -> None:
        self._federation = federation
        self._policy = policy
        self._store = store
        self._denials = denials
        self._signer = signer
        self._keyer = keyer
        self._clock = clock
        self._images = qr.ImageCache()

    async def issue(
        self,
        query: PersonQuery,
        *,
        remaining: float | None = None,
        image: ImageFormat | None = None,
        actor: Actor | None = None,
        count_denial: bool = True,
    ) -> IssueResult:
        """Decide for ``query`` and, when eligible, return the signed certificate.

        ``actor``: who asks, for the audit row written with the certificate.
        ``count_denial``: count a denial in the statistics (re-checks of an application
        are counted with the applications instead, not once per check).

        Raises RegistriesUnavailable when no registry answered, or when the answer would be
        a denial that the registry which did not answer could overturn.
        """
        lookup = await self._federation.lookup(query, remaining)
        if lookup.unanswered:
            raise RegistriesUnavailable("no registry answered")
        now = self._clock()
        decision = decide(lookup.record, now, self._policy)
        if isinstance(decision, Denial):
            return self._deny(lookup, decision.reason, now, count=count_denial)
        assert lookup.record is not None
        certificate = await self._certify(lookup, lookup.record, decision, now, image, actor)
        return IssueResult(lookup.sources, lookup.degraded, certificate=certificate)

    async def _render(self, uvci: str, image: ImageFormat, text: str) -> bytes:
        """The QR image of ``text``, rendered once per certificate and format."""
        cached = self._images.get(uvci, image.value, text)
        if cached is not None:
            return cached
        render = qr.render_png if image is ImageFormat.PNG else qr.render_svg
        # Rendering is CPU-bound (milliseconds per code): keep it off the event loop.
        rendered = await asyncio.to_thread(render, text)
        self._images.put(uvci, image.value, text, rendered)
        return rendered

    def _deny(
        self, lookup: FederatedLookup, reason: DenialReason, now: datetime, *, count: bool
    ) -> IssueResult:
        """A denial, unless data a silent registry holds could overturn it."""
        # Active illness stands on its own: more data cannot lift it.
        if lookup.degraded and reason is not DenialReason.ACTIVE_ILLNESS:
            raise RegistriesUnavailable("a registry that could overturn the denial did not answer")
        if count:
            self._denials.add(reason, moscow_date(now))
        return IssueResult(lookup.sources, lookup.degraded, denial=reason)

    async def _certify(
        self,
        lookup: FederatedLookup,
        person: PersonRecord,
        grant: Grant,
        now: datetime,
        image: ImageFormat | None,
        actor: Actor | None,
    ) -> IssuedCertificate:
        """Record (or find) the certificate for this grant and sign its payload."""
        person_key = self._keyer.person_key(
            snils=person.snils, oms_policy=person.oms_policy, passport=person.passport
        )
        fingerprint = self._keyer.fingerprint(
            grant.kind.value,
            grant.basis_kind.value,
            grant.valid_from.astimezone(UTC).isoformat(),
            grant.valid_until.astimezone(UTC).isoformat(),
            person.last_name,
            person.first_name,
            person.birth_date.isoformat(),
            *(_event_part(e) for e in grant.basis),
        )
        candidate = CertificateRecord(
            uvci=new_uvci(self._signer.issuer_country),
            person_key=person_key,
            basis_fingerprint=fingerprint,
            kind=grant.kind,
            valid_from=grant.valid_from,
            valid_until=grant.valid_until,
            # The CWT carries whole seconds; re-signing must reproduce the same claims.
            issued_at=now.replace(microsecond=0),
            kid=self._signer.current_kid,
            sources=frozenset(e.source for e in grant.basis),
            degraded=lookup.degraded,
        )
        record = await self._store.record(candidate, actor, now)
        hcert = build_hcert(
            grant,
            last_name=person.last_name,
            first_name=person.first_name,
            birth_date=person.birth_date,
            uvci=record.uvci,
            issuer_name=self._signer.issuer_name,
            country=self._signer.issuer_country,
        )
        signed = self._signer.sign(
            hcert,
            issued_at=record.issued_at,
            expires_at=record.valid_until,
            kid=record.kid,
        )
        rendered, media_type = b"", ""
        if image is not None:
            media_type = image.value
            rendered = await self._render(record.uvci, image, signed.text)
        return IssuedCertificate(
            record=record,
            grant=grant,
            qr_text=signed.text,
            kid=signed.kid,
            hcert=hcert,
            image=rendered,
            image_media_type=media_type,
        )
