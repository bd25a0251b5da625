"""The city registry adapter: ``patients`` and one table per kind of event.

One lookup is one statement: the patient row with its immunizations, COVID-19 cases and
lab results as arrays of anonymous records (correlated ``ARRAY(SELECT ROW(...))``
subqueries), so a lookup costs one round trip whatever the person's history.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from regfed.domain.identifiers import same_names
from regfed.domain.model import (
    Confirmation,
    IllnessEpisode,
    LabMethod,
    LabResult,
    PersonQuery,
    PersonRecord,
    Registry,
    Vaccination,
)
from regfed.domain.vaccines import VaccineProduct
from regfed.postgres.bounded import Queryable
from regfed.registries.sql import translate_errors

logger = logging.getLogger(__name__)

# The city stores SNILS as 11 bare digits and the OMS policy as char(16), which is the
# normalised form the query already carries: no reformatting is needed. The parameters
# are bpchar without a length: a char(n) cast would silently truncate a longer value
# into a false match, and a text parameter would turn the comparison into text = text,
# which cannot use the unique indexes.
#
# Both identifiers are unique, so at most two patients match: one by SNILS, one by OMS
# policy (a registry inconsistency, or two people's identifiers in one request). Both
# candidates come back, the SNILS match first, and the first whose names agree with the
# query's is the person (names are compared folded, in Python: see same_names). A match
# with another birth date is filtered out in SQL, so it looks exactly like an unknown
# identifier; one with other names is dropped before anything of it is read.
_LOOKUP_SQL = """
SELECT
    p.patient_id,
    p.snils,
    p.oms_policy,
    p.last_name,
    p.first_name,
    p.middle_name,
    p.birth_date,
    ARRAY(
        SELECT ROW(i.immunization_id, i.vaccine, i.component, i.administered_on)
        FROM immunizations i
        WHERE i.patient_id = p.patient_id
        ORDER BY i.administered_on, i.component, i.immunization_id
    ) AS immunizations,
    ARRAY(
        SELECT ROW(c.case_id, c.diagnosed_on, c.confirmed_by, c.recovered_on)
        FROM covid_cases c
        WHERE c.patient_id = p.patient_id
        ORDER BY c.diagnosed_on, c.case_id
    ) AS covid_cases,
    ARRAY(
        SELECT ROW(r.result_id, r.test, r.positive, r.sampled_at, r.laboratory)
        FROM lab_results r
        WHERE r.patient_id = p.patient_id
        ORDER BY r.sampled_at, r.result_id
    ) AS lab_results
FROM patients p
WHERE (p.snils = $1::bpchar OR p.oms_policy = $2::bpchar)
  AND p.birth_date = $3::date
ORDER BY (p.snils = $1::bpchar) IS TRUE DESC,
         (p.oms_policy = $2::bpchar) IS TRUE DESC,
         p.patient_id
LIMIT 2
"""


class CityRegistry:
    """Reads the city medical registry through a pool the caller owns (a
    :class:`~regfed.postgres.bounded.BoundedPool` in the service)."""

    def __init__(self, pool: Queryable, vaccines: Mapping[str, VaccineProduct]) -> None:
        self.registry = Registry.CITY
        self._pool = pool
        self._vaccines = vaccines

    def keyed_on(self, query: PersonQuery) -> bool:
        """The city keys on SNILS and the OMS policy."""
        return query.snils is not None or query.oms_policy is not None

    async def find(self, query: PersonQuery) -> PersonRecord | None:
        """The patient matching an identifier, the birth date and the names, with all
        their events."""
        if not self.keyed_on(query):
            return None  # nothing to ask
        async with translate_errors(self.registry):
            rows = await self._pool.fetch(
                _LOOKUP_SQL, query.snils, query.oms_policy, query.birth_date
            )
        for row in rows:
            if same_names(query, row["last_name"], row["first_name"], row["middle_name"] or ""):
                return self._to_record(row)
        return None

    def _to_record(self, row: asyncpg.Record) -> PersonRecord:
        vaccinations, skipped = self._vaccinations(row["immunizations"])
        illnesses = tuple(filter(None, (_illness(case) for case in row["covid_cases"])))
        lab_results = tuple(filter(None, (_lab_result(result) for result in row["lab_results"])))
        skipped += len(row["covid_cases"]) - len(illnesses)
        skipped += len(row["lab_results"]) - len(lab_results)
        return PersonRecord(
            registry=self.registry,
            last_name=row["last_name"],
            first_name=row["first_name"],
            middle_name=row["middle_name"] or "",
            birth_date=row["birth_date"],
            snils=_strip(row["snils"]),
            oms_policy=_strip(row["oms_policy"]),
            vaccinations=vaccinations,
            illnesses=illnesses,
            lab_results=lab_results,
            skipped_events=skipped,
        )

    def _vaccinations(self, rows: Sequence[tuple[Any, ...]]) -> tuple[tuple[Vaccination, ...], int]:
        """The immunizations with a catalogued product, and how many were not."""
        kept: list[Vaccination] = []
        skipped = 0
        for immunization_id, product, component, day in rows:
            if product not in self._vaccines:
                # A product code is not personal data, and it is what an operator needs
                # to decide whether to extend the catalogue.
                logger.warning(
                    "city immunization %d skipped: product %.40r not in the vaccine catalogue",
                    immunization_id,
                    product,
                )
                skipped += 1
                continue
            kept.append(Vaccination(product=product, dose=component, day=day, source=self.registry))
        return tuple(kept), skipped


# The code lists below are CHECK-constrained in the published schema, but the registry is
# not ours: should its owner widen a list, the new rows are skipped and counted rather
# than failing every lookup of the people who have them.


def _illness(case: tuple[int, date, str, date | None]) -> IllnessEpisode | None:
    case_id, diagnosed_on, confirmed_by, recovered_on = case
    try:
        confirmation = Confirmation(confirmed_by)
    except ValueError:
        logger.warning("city covid case %d skipped: unknown confirmation", case_id)
        return None
    return IllnessEpisode(
        diagnosed_on=diagnosed_on,
        confirmation=confirmation,
        recovered_on=recovered_on,
        source=Registry.CITY,
    )


def _lab_result(result: tuple[int, str, bool, datetime, str]) -> LabResult | None:
    result_id, test, positive, sampled_at, laboratory = result
    try:
        method = LabMethod(test)
    except ValueError:
        logger.warning("city lab result %d skipped: unknown test", result_id)
        return None
    return LabResult(
        method=method,
        positive=positive,
        sampled_at=sampled_at,
        laboratory=laboratory,
        source=Registry.CITY,
    )


def _strip(value: str | None) -> str | None:
    """A char(n) identifier without the blank padding PostgreSQL adds to short values."""
    return value.strip() if value is not None else None
