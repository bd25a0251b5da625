"""Writing the demo people into the two registries.

Only the embedded demo databases, or databases ``regfed demo seed`` is pointed at, are
ever written: the service itself never writes to a registry. Seeding is idempotent: it
creates the registry tables when they are absent, then replaces all their rows, in one
transaction per registry, so a re-seed on another day moves every event along with "now".
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from regfed.demo.people import DEMO_PEOPLE, DemoPerson, Dose, Illness, LabTest
from regfed.demo.schema import registry_ddl
from regfed.domain.model import moscow_date, moscow_midnight
from regfed.domain.vaccines import DEFAULT_VACCINES
from regfed.registries.federal import format_passport_federal, format_snils_federal

# Parents first: rows are copied in this order, and TRUNCATE takes them all at once.
CITY_TABLES = ("patients", "immunizations", "covid_cases", "lab_results")
FEDERAL_TABLES = ("citizens", "medical_events")
_FEDERAL_EVENT_COLUMNS = ("citizen_id", "event_type", "event_at", "details", "region_code")

# Stable ids: the same person keeps the same citizen id and episode ids across re-seeds.
_NAMESPACE = uuid.UUID("3f6c2a9e-7d41-4b8a-9c5e-2b1d0e4f6a7c")
# Serialises concurrent seeders (several server processes starting at once) per database.
_SEED_LOCK = 0x7265_6766_6564  # "regfed"

Rows = dict[str, list[tuple[Any, ...]]]


def city_rows(people: Sequence[DemoPerson], now: datetime) -> Rows:
    """The city registry's rows for ``people``, with event dates relative to ``now``."""
    today = moscow_date(now)
    rows: Rows = {table: [] for table in CITY_TABLES}
    event_ids = itertools.count(1)
    for patient_id, person in enumerate((p for p in people if p.in_city), start=1):
        rows["patients"].append(
            (
                patient_id, person.oms_policy, person.snils, person.last_name,
                person.first_name, person.middle_name or None, person.birth_date,
            )
        )  # fmt: skip
        for event in person.city_events:
            if isinstance(event, Dose):
                day = today - timedelta(days=event.days_ago)
                rows["immunizations"].append(
                    (next(event_ids), patient_id, event.product, event.dose, day, "GP-012")
                )
            elif isinstance(event, Illness):
                rows["covid_cases"].append(
                    (
                        next(event_ids), patient_id,
                        today - timedelta(days=event.diagnosed_days_ago), event.confirmation,
                        _days_ago(today, event.recovered_days_ago),
                    )
                )  # fmt: skip
            else:
                rows["lab_results"].append(
                    (
                        next(event_ids), patient_id, event.method, event.positive,
                        now - timedelta(hours=event.hours_ago), event.laboratory,
                    )
                )  # fmt: skip
    return rows


def federal_rows(people: Sequence[DemoPerson], now: datetime) -> Rows:
    """The federal registry's rows for ``people``, with event times relative to ``now``."""
    rows: Rows = {table: [] for table in FEDERAL_TABLES}
    for person in (p for p in people if p.in_federal):
        citizen_id = uuid.uuid5(_NAMESPACE, person.key)
        rows["citizens"].append(
            (
                citizen_id,
                format_snils_federal(person.snils) if person.snils else None,
                format_passport_federal(person.passport) if person.passport else None,
                person.last_name, person.first_name, person.middle_name or None,
                person.birth_date, person.region,
            )
        )  # fmt: skip
        rows["medical_events"] += [
            (citizen_id, event_type, at, details, person.region)
            for event_type, at, details in _federal_events(person, citizen_id, now)
        ]
    return rows


def _federal_events(
    person: DemoPerson, citizen_id: uuid.UUID, now: datetime
) -> list[tuple[str, datetime, str]]:
    """(event_type, event_at, details JSON) for each of the person's federal events."""
    today = moscow_date(now)
    events: list[tuple[str, datetime, str]] = []
    for index, event in enumerate(person.federal_events):
        if isinstance(event, Dose):
            series = DEFAULT_VACCINES[event.product].doses
            document = {"product": event.product, "dose": event.dose, "series": series}
            events.append(("VACCINATION", _midnight(today, event.days_ago), json.dumps(document)))
        elif isinstance(event, Illness):
            episode = str(uuid.uuid5(citizen_id, str(index)))
            document = {"episode": episode, "confirmation": event.confirmation}
            events.append(
                ("ILLNESS", _midnight(today, event.diagnosed_days_ago), json.dumps(document))
            )
            if event.recovered_days_ago is not None:
                at = _midnight(today, event.recovered_days_ago)
                events.append(("RECOVERY", at, json.dumps({"episode": episode})))
        elif isinstance(event, LabTest):
            result = "POSITIVE" if event.positive else "NEGATIVE"
            document = {"method": event.method, "result": result, "laboratory": event.laboratory}
            events.append(("TEST", now - timedelta(hours=event.hours_ago), json.dumps(document)))
        else:
            events.append((event.event_type, _midnight(today, event.days_ago), event.details))
    return events


async def seed_demo(
    city_dsn: str,
    federal_dsn: str,
    now: datetime,
    people: Sequence[DemoPerson] = DEMO_PEOPLE,
) -> None:
    """(Re)create the registry tables if absent and replace their rows with ``people``."""
    await _replace("city", city_dsn, CITY_TABLES, city_rows(people, now))
    await _replace("federal", federal_dsn, FEDERAL_TABLES, federal_rows(people, now))


async def prepare_registry(conn: asyncpg.Connection, registry: str, tables: Sequence[str]) -> None:
    """Inside the caller's transaction: create the schema when absent, empty the tables.

    Under an advisory lock, so several processes seeding at once take turns.
    """
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _SEED_LOCK)
    present = await conn.fetchval(
        "SELECT count(to_regclass(t)) FROM unnest($1::text[]) AS t", list(tables)
    )
    if present == 0:
        await conn.execute(registry_ddl(registry))
    elif present != len(tables):
        raise RuntimeError(f"the {registry} registry database has only some of its tables")
    await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")


async def _replace(registry: str, dsn: str, tables: Sequence[str], rows: Rows) -> None:
    """In one transaction: create the schema when absent, empty the tables, copy ``rows``."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await prepare_registry(conn, registry, tables)
            for table in tables:
                columns = _FEDERAL_EVENT_COLUMNS if table == "medical_events" else None
                await conn.copy_records_to_table(table, records=rows[table], columns=columns)
    finally:
        await conn.close()


async def arrive(federal_dsn: str, person: DemoPerson, now: datetime) -> int:
    """Insert ``person``'s late federal record, dated relative to ``now``, into the federal
    registry at ``federal_dsn``; return how many events it holds. Only for the demo
    registries (the caller makes sure): it replaces whatever that person had there.
    """
    rows = federal_rows([person.arrived()], now)
    (citizen_id,) = {row[0] for row in rows["citizens"]}
    conn = await asyncpg.connect(federal_dsn)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _SEED_LOCK)
            await conn.execute("DELETE FROM medical_events WHERE citizen_id = $1", citizen_id)
            await conn.execute("DELETE FROM citizens WHERE id = $1", citizen_id)
            for table in FEDERAL_TABLES:
                columns = _FEDERAL_EVENT_COLUMNS if table == "medical_events" else None
                await conn.copy_records_to_table(table, records=rows[table], columns=columns)
    finally:
        await conn.close()
    return len(rows["medical_events"])


def _days_ago(today: date, days: int | None) -> date | None:
    return None if days is None else today - timedelta(days=days)


def _midnight(today: date, days_ago: int) -> datetime:
    """A date-only federal event: 00:00 Moscow time, as the registry stores them."""
    return moscow_midnight(today - timedelta(days=days_ago))
