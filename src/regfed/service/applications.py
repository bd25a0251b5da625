"""The application use cases: submit, read, and one re-check (the reconciler's step).

An application is asked about through the Issue use case itself, never a copy of it:
the same federation, policy, idempotent store and signer. So a person who may have a code
gets exactly the certificate Issue would give them (the same UVCI, the same code), both
when they submit and when the reconciler finds their data later.

One check, three outcomes:

- a certificate → ``ISSUED``, closed: the sealed person is erased, the code kept sealed;
- a denial the registries stand by → one more check; past the time to live, ``EXPIRED``
  with that denial (closed, the sealed person erased); else ``PENDING`` until the next
  check, later and later as the denials repeat (:class:`Schedule`);
- no answer (Issue would be UNAVAILABLE: no registry answered, or a denial rests on a
  silent one) → nothing happened: no check counted, nothing closed. A submission then is
  still recorded, ``PENDING`` and unchecked, for the reconciler to check as soon as the
  registries answer.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from regfed.domain.model import Event, PersonQuery
from regfed.errors import NotFound, RegistriesUnavailable
from regfed.service.application_data import (
    decode_certificate,
    decode_person,
    encode_certificate,
    encode_person,
)
from regfed.service.audit import Actor
from regfed.service.issuing import IssueResult, IssueService
from regfed.service.personkey import PersonKeyer
from regfed.service.ports import (
    ApplicationCategory,
    ApplicationRecord,
    ApplicationStatus,
    ApplicationStore,
    CertificateRecord,
    Clock,
    Signer,
    utc_now,
)
from regfed.service.sealing import Purpose, Sealer

log = logging.getLogger(__name__)

RECONCILER = "reconciler"  # the caller the audit trail names for re-checks

# Doubling the wait more often than this many times would overflow any sensible cap.
_MAX_DOUBLINGS = 30


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a pending application is checked next, and when it expires.

    The first ``steady_checks`` checks (the submission's included) are ``interval`` apart:
    late data often arrives within the hour, and such a check costs about what one Issue
    call does. After that the wait doubles with every denial, up to ``max_backoff`` (never
    below ``interval``), so months of a large backlog cost the registries little. The
    last check falls on the expiry instant itself.
    """

    interval: timedelta
    max_backoff: timedelta
    ttl: timedelta
    steady_checks: int = 3

    def __post_init__(self) -> None:
        if min(self.interval, self.max_backoff, self.ttl) <= timedelta(0):
            raise ValueError("the schedule's durations must be positive")

    def expires_at(self, submitted_at: datetime) -> datetime:
        """The instant an application still denied is closed EXPIRED."""
        return submitted_at + self.ttl

    def next_check(self, submitted_at: datetime, checks: int, now: datetime) -> datetime:
        """After the ``checks``-th check at ``now``: when to check again."""
        doublings = min(max(0, checks - self.steady_checks), _MAX_DOUBLINGS)
        wait: timedelta = max(self.interval, min(self.interval * 2**doublings, self.max_backoff))
        return min(now + wait, self.expires_at(submitted_at))


@dataclass(frozen=True, slots=True)
class ApplicationCertificate:
    """The code an application got, re-signed: the same text Issue gives the person."""

    record: CertificateRecord
    qr_text: str
    kid: bytes
    basis: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class ApplicationView:
    """An application as the API shows it."""

    application: ApplicationRecord
    certificate: ApplicationCertificate | None = None


class ApplicationService:
    """Submits, shows and re-checks applications."""

    def __init__(
        self,
        *,
        issuing: IssueService,
        store: ApplicationStore,
        sealer: Sealer,
        keyer: PersonKeyer,
        signer: Signer,
        schedule: Schedule,
        clock: Clock = utc_now,
    ) -> None:
        self._issuing = issuing
        self._store = store
        self._sealer = sealer
        self._keyer = keyer
        self._signer = signer
        self._schedule = schedule
        self._clock = clock

    async def submit(
        self,
        query: PersonQuery,
        *,
        contact: str,
        category: ApplicationCategory,
        remaining: float | None = None,
        actor: Actor | None = None,
    ) -> ApplicationView:
        """Ask the registries now and record the application: ISSUED with the certificate
        when the person may have one, else PENDING. A person with an open application gets
        that one back, unchanged. ``actor``: who submits, for the audit trail."""
        person_key = self._keyer.person_key(
            snils=query.snils, oms_policy=query.oms_policy, passport=query.passport
        )
        existing = await self._store.open_for(person_key)
        if existing is not None:
            return self.view(existing)
        now = self._clock()
        application_id = uuid.uuid4()  # 122 random bits from os.urandom: unguessable
        fresh = ApplicationRecord(
            id=application_id,
            person_key=person_key,
            category=category,
            status=ApplicationStatus.PENDING,
            submitted_at=now,
            next_check_at=now,  # unchecked: due at once
            sealed_person=self._sealer.seal(
                Purpose.PERSON, application_id, encode_person(query, contact)
            ),
        )
        result: IssueResult | None = None
        try:
            result = await self._issuing.issue(
                query, remaining=remaining, actor=actor, count_denial=False
            )
        except RegistriesUnavailable:
            log.info("application %s: no answer from the registries; recorded unchecked", fresh.id)
        checked = None if result is None else self._checked(fresh, result, now)
        stored = await self._store.submit(checked or fresh)
        if stored.id != application_id:
            # A concurrent submission for the same person won: theirs is the open one.
            return self.view(stored)
        issued = result.certificate if result is not None else None
        if issued is None:
            return ApplicationView(stored)
        return ApplicationView(
            stored,
            ApplicationCertificate(issued.record, issued.qr_text, issued.kid, issued.grant.basis),
        )

    async def get(self, application_id: uuid.UUID) -> ApplicationView:
        """The application, with its code re-signed once issued; NotFound if unknown."""
        record = await self._store.get(application_id)
        if record is None:
            raise NotFound("no application with this id")
        return self.view(record)

    def view(self, record: ApplicationRecord) -> ApplicationView:
        """The application as shown: an issued one with its code, re-signed from what the
        store keeps (deterministic ECDSA gives the same text Issue gave)."""
        if record.status is not ApplicationStatus.ISSUED:
            return ApplicationView(record)
        certificate, sealed = record.certificate, record.sealed_certificate
        if certificate is None or sealed is None:
            raise ValueError("an issued application is read with its certificate")
        hcert, basis = decode_certificate(self._sealer.open(Purpose.CERTIFICATE, record.id, sealed))
        signed = self._signer.sign(
            hcert, issued_at=certificate.issued_at, expires_at=certificate.valid_until,
            kid=certificate.kid,
        )  # fmt: skip
        return ApplicationView(
            record, ApplicationCertificate(certificate, signed.text, signed.kid, basis)
        )

    async def recheck(self, application: ApplicationRecord) -> ApplicationRecord | None:
        """``application`` after one more check through Issue; None when the registries
        could not answer (nothing to count, nothing to close).

        Raises SealedDataError when its sealed person does not open, and StoreUnavailable
        when the store fails: the caller leaves the application as it was.
        """
        if application.sealed_person is None:
            raise ValueError("only an open application is re-checked")
        opened = self._sealer.open(Purpose.PERSON, application.id, application.sealed_person)
        query, _ = decode_person(opened)
        # The audit trail names the reconciler, and the application for the request id.
        actor = Actor(RECONCILER, "operator", f"application:{application.id}")
        try:
            result = await self._issuing.issue(query, actor=actor, count_denial=False)
        except RegistriesUnavailable:
            return None
        return self._checked(application, result, self._clock())

    def _checked(
        self, application: ApplicationRecord, result: IssueResult, now: datetime
    ) -> ApplicationRecord | None:
        """``application`` after the check that gave ``result`` at ``now``; None when the
        answer does not count."""
        checks = application.checks + 1
        issued = result.certificate
        if issued is not None:
            sealed = self._sealer.seal(
                Purpose.CERTIFICATE,
                application.id,
                encode_certificate(issued.hcert, issued.grant.basis),
            )
            return replace(
                application,
                status=ApplicationStatus.ISSUED,
                checks=checks,
                checked_at=now,
                closed_at=now,
                next_check_at=None,
                sealed_person=None,
                uvci=issued.record.uvci,
                sealed_certificate=sealed,
                certificate=issued.record,
            )
        if result.degraded:
            # Issue gives ACTIVE_ILLNESS with a registry silent; an application waits for
            # a full answer instead, so an outage never counts a check or closes one.
            return None
        if now >= self._schedule.expires_at(application.submitted_at):
            return replace(
                application,
                status=ApplicationStatus.EXPIRED,
                checks=checks,
                checked_at=now,
                closed_at=now,
                next_check_at=None,
                sealed_person=None,
                denial=result.denial,
            )
        return replace(
            application,
            checks=checks,
            checked_at=now,
            denial=result.denial,
            next_check_at=self._schedule.next_check(application.submitted_at, checks, now),
        )
