"""Request validation: every problem found, each naming its field, none echoing the value.

Values are personal data (SNILS, passport, names): a violation says what is wrong with a
field, never what the field held.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime

from google.protobuf import timestamp_pb2

from regfed.domain.identifiers import (
    normalise_oms,
    normalise_passport,
    normalise_snils,
    parse_birth_date,
)
from regfed.domain.model import PersonQuery
from regfed.errors import FieldViolation, InvalidField, InvalidRequest
from regfed.hcert.labels import UVCI_PREFIX
from regfed.hcert.payload import MAX_TEXT
from regfed.service.ports import ApplicationCategory
from regfed.v1 import certificate_service_pb2 as pb

MAX_NAME_LENGTH = 100


def _name(value: str, field: str, violations: list[FieldViolation], *, required: bool) -> str:
    """A stripped name, or a violation when it is required and empty, too long, or holds
    control characters (no name has them; they are how junk and injection attempts look)."""
    name = " ".join(value.split())
    if required and not name:
        violations.append(FieldViolation(field, "must not be empty"))
    elif len(name) > MAX_NAME_LENGTH:
        violations.append(FieldViolation(field, f"must be at most {MAX_NAME_LENGTH} characters"))
    elif any(unicodedata.category(ch) == "Cc" for ch in name):
        violations.append(FieldViolation(field, "must not contain control characters"))
    return name


def person_query(person: pb.Person, today: date, field: str = "person") -> PersonQuery:
    """A normalised query from a request's ``Person``, or InvalidRequest naming every problem."""
    violations: list[FieldViolation] = []
    last_name = _name(person.last_name, f"{field}.last_name", violations, required=True)
    first_name = _name(person.first_name, f"{field}.first_name", violations, required=True)
    middle_name = _name(person.middle_name, f"{field}.middle_name", violations, required=False)

    def parse(raw: str, name: str, normalise: Callable[[str], str]) -> str | None:
        if not raw.strip():
            return None
        try:
            return normalise(raw)
        except InvalidField as exc:
            violations.append(FieldViolation(f"{field}.{name}", exc.description))
            return None

    snils = parse(person.snils, "snils", normalise_snils)
    oms_policy = parse(person.oms_policy, "oms_policy", normalise_oms)
    passport = parse(person.passport, "passport", normalise_passport)
    if not (person.snils.strip() or person.oms_policy.strip() or person.passport.strip()):
        violations.append(
            FieldViolation(
                f"{field}.snils", "at least one of snils, oms_policy, passport is required"
            )
        )
    birth_date: date | None = None
    try:
        birth_date = parse_birth_date(person.birth_date, today)
    except InvalidField as exc:
        violations.append(FieldViolation(f"{field}.birth_date", exc.description))
    if violations or birth_date is None:
        raise InvalidRequest(violations)
    return PersonQuery(
        last_name=last_name,
        first_name=first_name,
        middle_name=middle_name,
        birth_date=birth_date,
        snils=snils,
        oms_policy=oms_policy,
        passport=passport,
    )


MAX_QR_PAYLOAD = 8 * 1024  # bytes; real codes are well under 2 KiB
MAX_REASON_LENGTH = 500


# The instants a Timestamp may hold (google/protobuf/timestamp.proto), as Python's datetime
# can: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


def verify_at(at: timestamp_pb2.Timestamp) -> datetime:
    """``VerifyRequest.at`` as an aware instant, or InvalidRequest when it is out of range."""
    if not (_MIN_SECONDS <= at.seconds <= _MAX_SECONDS and 0 <= at.nanos < 1_000_000_000):
        raise InvalidRequest(
            [FieldViolation("at", "must be a timestamp between years 1 and 9999 (UTC)")]
        )
    return at.ToDatetime(tzinfo=UTC)


def verify_payload(text: str) -> str:
    """The scanned text to verify: anything non-empty up to MAX_QR_PAYLOAD bytes."""
    if not text:
        raise InvalidRequest([FieldViolation("qr_payload", "must not be empty")])
    if len(text.encode("utf-8")) > MAX_QR_PAYLOAD:
        raise InvalidRequest(
            [FieldViolation("qr_payload", f"must be at most {MAX_QR_PAYLOAD} bytes")]
        )
    return text


def revocation(uvci: str, reason: str) -> tuple[str, str]:
    """A UVCI and a reason to revoke it for, or InvalidRequest naming what is wrong."""
    violations: list[FieldViolation] = []
    uvci = uvci.strip()
    if not uvci.startswith(UVCI_PREFIX) or len(uvci) > MAX_TEXT:
        violations.append(
            FieldViolation("uvci", f"must start with {UVCI_PREFIX} (at most {MAX_TEXT} characters)")
        )
    elif not (uvci.isascii() and uvci.isprintable()) or " " in uvci:
        # Every UVCI is printable ASCII; a NUL would not even reach the database (PostgreSQL
        # text cannot hold one).
        violations.append(FieldViolation("uvci", "must be printable ASCII without spaces"))
    reason = " ".join(reason.split())
    if not reason:
        violations.append(FieldViolation("reason", "must not be empty"))
    elif len(reason) > MAX_REASON_LENGTH:
        violations.append(
            FieldViolation("reason", f"must be at most {MAX_REASON_LENGTH} characters")
        )
    elif any(unicodedata.category(ch) == "Cc" for ch in reason):
        violations.append(FieldViolation("reason", "must not contain control characters"))
    if violations:
        raise InvalidRequest(violations)
    return uvci, reason


MAX_CONTACT_LENGTH = 200
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9()\- ]+")
_PHONE_DIGITS = range(5, 16)  # E.164 allows at most 15
CATEGORY = {
    pb.APPLICATION_CATEGORY_VACCINATION_NOT_FOUND: ApplicationCategory.VACCINATION_NOT_FOUND,
    pb.APPLICATION_CATEGORY_ILLNESS_NOT_FOUND: ApplicationCategory.ILLNESS_NOT_FOUND,
    pb.APPLICATION_CATEGORY_OTHER: ApplicationCategory.OTHER,
}


def _contact(raw: str, violations: list[FieldViolation]) -> str:
    """An e-mail address or a phone number, stripped; a violation otherwise."""
    contact = raw.strip()
    digits = sum(c.isdigit() for c in contact)
    if not contact:
        violations.append(FieldViolation("contact", "must not be empty"))
    elif len(contact) > MAX_CONTACT_LENGTH:
        violations.append(
            FieldViolation("contact", f"must be at most {MAX_CONTACT_LENGTH} characters")
        )
    elif not (_EMAIL.fullmatch(contact) or (_PHONE.fullmatch(contact) and digits in _PHONE_DIGITS)):
        violations.append(FieldViolation("contact", "must be an e-mail address or a phone number"))
    return contact


def application_submission(
    request: pb.SubmitApplicationRequest, today: date
) -> tuple[PersonQuery, str, ApplicationCategory]:
    """The person (validated exactly as for Issue), contact and category of a submission,
    or InvalidRequest naming every field at fault."""
    violations: list[FieldViolation] = []
    query: PersonQuery | None = None
    try:
        query = person_query(request.person, today)
    except InvalidRequest as exc:
        violations += exc.violations
    contact = _contact(request.contact, violations)
    category = CATEGORY.get(request.category)
    if category is None:
        violations.append(
            FieldViolation("category", "must be VACCINATION_NOT_FOUND, ILLNESS_NOT_FOUND or OTHER")
        )
    if violations or query is None or category is None:
        raise InvalidRequest(violations)
    return query, contact, category


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def application_id(text: str) -> uuid.UUID:
    """An application id as SubmitApplication gives it (a UUID), or InvalidRequest."""
    text = text.strip()
    if not _UUID.fullmatch(text):
        raise InvalidRequest(
            [FieldViolation("application_id", "must be a UUID, as SubmitApplication returned")]
        )
    return uuid.UUID(text)


def stats_window(request: pb.GetStatsRequest) -> tuple[datetime | None, datetime | None]:
    """GetStats' optional window, or InvalidRequest when it is out of range or empty."""
    violations: list[FieldViolation] = []

    def bound(name: str, present: bool, value: timestamp_pb2.Timestamp) -> datetime | None:
        if not present:
            return None
        try:
            return verify_at(value)
        except InvalidRequest:
            violations.append(
                FieldViolation(name, "must be a timestamp between years 1 and 9999 (UTC)")
            )
            return None

    since = bound("since", request.HasField("since"), request.since)
    until = bound("until", request.HasField("until"), request.until)
    if since is not None and until is not None and until <= since:
        violations.append(FieldViolation("until", "must be after since"))
    if violations:
        raise InvalidRequest(violations)
    return since, until
