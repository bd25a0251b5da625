"""Request validation: every problem found, each naming its field, none echoing the value.

Values are personal data (SNILS, passport, names): a violation says what is wrong with a
field, never what the field held.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from regfed.domain.identifiers import (
    InvalidField,
    normalise_oms,
    normalise_passport,
    normalise_snils,
    parse_birth_date,
)
from regfed.domain.model import PersonQuery
from regfed.v1 import certificate_service_pb2 as pb

MAX_NAME_LENGTH = 100


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One field and what is wrong with it."""

    field: str
    description: str


class InvalidRequest(Exception):
    """The request is malformed; ``violations`` says where."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))
        self.violations = violations


def _name(value: str, field: str, violations: list[FieldViolation], *, required: bool) -> str:
    """A stripped name, or a violation when it is required and empty, or too long."""
    name = " ".join(value.split())
    if required and not name:
        violations.append(FieldViolation(field, "must not be empty"))
    elif len(name) > MAX_NAME_LENGTH:
        violations.append(FieldViolation(field, f"must be at most {MAX_NAME_LENGTH} characters"))
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
UVCI_PREFIX = "URN:UVCI:"


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
    if not uvci.startswith(UVCI_PREFIX) or len(uvci) > 80:
        violations.append(FieldViolation("uvci", f"must start with {UVCI_PREFIX} (at most 80)"))
    reason = " ".join(reason.split())
    if not reason:
        violations.append(FieldViolation("reason", "must not be empty"))
    elif len(reason) > MAX_REASON_LENGTH:
        violations.append(
            FieldViolation("reason", f"must be at most {MAX_REASON_LENGTH} characters")
        )
    if violations:
        raise InvalidRequest(violations)
    return uvci, reason
