"""The federal registry adapter: ``citizens`` and their ``medical_events`` documents.

One lookup is one statement: the citizen row with all of their events as an array of
anonymous records, so a lookup costs one round trip. The documents are parsed by the
pure functions in :mod:`regfed.registries.federal_events`.
"""

from __future__ import annotations

from collections.abc import Mapping

from regfed.domain.identifiers import same_names
from regfed.domain.model import PersonQuery, PersonRecord, Registry
from regfed.domain.vaccines import VaccineProduct
from regfed.postgres.bounded import Queryable
from regfed.registries.federal_events import RawEvent, parse_events
from regfed.registries.sql import translate_errors

# The federal registry stores identifiers formatted ('XXX-XXX-XXX YY', 'SSSS NNNNNN'), so
# the query's bare digits are formatted before they are compared: comparing the stored
# columns as written keeps the unique indexes usable.
#
# Both identifiers are unique, so at most two citizens match (one by SNILS, one by
# passport); both come back, the SNILS match first, and the first whose names agree with
# the query's is the person. A match with another birth date is filtered out in SQL, so it
# looks exactly like an unknown identifier; one with other names is dropped before its
# documents are parsed. details::text: the documents are parsed here, by rules that
# tolerate bad ones, not by a connection-wide codec.
_LOOKUP_SQL = """
SELECT
    c.snils,
    c.passport,
    c.surname,
    c.given_name,
    c.patronymic,
    c.date_of_birth,
    ARRAY(
        SELECT ROW(e.id, e.event_type, e.event_at, e.details::text)
        FROM medical_events e
        WHERE e.citizen_id = c.id
        ORDER BY e.event_at, e.id
    ) AS events
FROM citizens c
WHERE (c.snils = $1::text OR c.passport = $2::text)
  AND c.date_of_birth = $3::date
ORDER BY (c.snils = $1::text) IS TRUE DESC, c.id
LIMIT 2
"""


class FederalRegistry:
    """Reads the federal registry through a pool the caller owns (a
    :class:`~regfed.postgres.bounded.BoundedPool` in the service)."""

    def __init__(self, pool: Queryable, vaccines: Mapping[str, VaccineProduct]) -> None:
        self.registry = Registry.FEDERAL
        self._pool = pool
        self._vaccines = vaccines

    def keyed_on(self, query: PersonQuery) -> bool:
        """The federal registry keys on SNILS and the passport."""
        return query.snils is not None or query.passport is not None

    async def find(self, query: PersonQuery) -> PersonRecord | None:
        """The citizen matching an identifier, the birth date and the names, with all
        their events."""
        if not self.keyed_on(query):
            return None  # nothing to ask
        snils = format_snils_federal(query.snils) if query.snils is not None else None
        passport = format_passport_federal(query.passport) if query.passport is not None else None
        async with translate_errors(self.registry):
            rows = await self._pool.fetch(_LOOKUP_SQL, snils, passport, query.birth_date)
        row = next(
            (
                r
                for r in rows
                if same_names(query, r["surname"], r["given_name"], r["patronymic"] or "")
            ),
            None,
        )
        if row is None:
            return None
        events = parse_events(
            (
                RawEvent(id=e[0], event_type=e[1], event_at=e[2], details=e[3])
                for e in row["events"]
            ),
            self._vaccines,
        )
        return PersonRecord(
            registry=self.registry,
            last_name=row["surname"],
            first_name=row["given_name"],
            middle_name=row["patronymic"] or "",
            birth_date=row["date_of_birth"],
            snils=_digits(row["snils"]),
            passport=_digits(row["passport"]),
            vaccinations=events.vaccinations,
            illnesses=events.illnesses,
            lab_results=events.lab_results,
            skipped_events=events.skipped,
        )


def format_snils_federal(digits11: str) -> str:
    """The federal registry's spelling of a SNILS: ``XXX-XXX-XXX YY``."""
    if len(digits11) != 11 or not digits11.isascii() or not digits11.isdigit():
        raise ValueError("digits11 must be 11 digits")
    d = digits11
    return f"{d[0:3]}-{d[3:6]}-{d[6:9]} {d[9:11]}"


def format_passport_federal(digits10: str) -> str:
    """The federal registry's spelling of a passport: ``SSSS NNNNNN``."""
    if len(digits10) != 10 or not digits10.isascii() or not digits10.isdigit():
        raise ValueError("digits10 must be 10 digits")
    return f"{digits10[:4]} {digits10[4:]}"


def _digits(value: str | None) -> str | None:
    """A stored identifier as bare digits, the domain's normalised form."""
    return "".join(ch for ch in value if ch in "0123456789") if value is not None else None
