"""The federal registry's event documents: parsing, pairing, skipping bad ones."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from regfed.domain.model import (
    MOSCOW,
    Confirmation,
    IllnessEpisode,
    LabMethod,
    LabResult,
    Registry,
    Vaccination,
)
from regfed.domain.vaccines import DEFAULT_VACCINES
from regfed.registries.federal_events import RawEvent, parse_events

EPISODE_A = "7b0e4c8e-3a57-4c1e-9f1e-0d6f3f7f2a01"
EPISODE_B = "a3c1d2e4-5b6f-4a7b-8c9d-0e1f2a3b4c5d"


def at(day: int, hour: int = 0) -> datetime:
    """An instant in March 2021, Moscow time."""
    return datetime(2021, 3, day, hour, tzinfo=MOSCOW)


def event(event_id: int, event_type: str, when: datetime, details: object) -> RawEvent:
    """A raw event; ``details`` is dumped to JSON unless it already is text."""
    text = details if isinstance(details, str) else json.dumps(details)
    return RawEvent(id=event_id, event_type=event_type, event_at=when, details=text)


def vaccination(event_id: int, when: datetime, **details: object) -> RawEvent:
    """A VACCINATION event with a valid document, overridden by ``details``."""
    document: dict[str, object] = {"product": "Gam-COVID-Vac", "dose": 1, "series": 2}
    document.update(details)
    return event(event_id, "VACCINATION", when, document)


def test_vaccination_day_is_the_moscow_date() -> None:
    """A dose given at 22:30 UTC is recorded on the next Moscow day."""
    late = datetime(2021, 3, 1, 22, 30, tzinfo=UTC)
    parsed = parse_events([vaccination(1, late, dose=2)], DEFAULT_VACCINES)
    assert parsed.vaccinations == (
        Vaccination("Gam-COVID-Vac", 2, date(2021, 3, 2), Registry.FEDERAL),
    )
    assert parsed.skipped == 0


def test_unknown_keys_are_ignored() -> None:
    """Extra keys in a document do not make it unusable."""
    parsed = parse_events([vaccination(1, at(1), lot="AB123", clinic=7)], DEFAULT_VACCINES)
    assert len(parsed.vaccinations) == 1
    assert parsed.skipped == 0


def test_unrecognised_but_catalogued_product_is_kept() -> None:
    """A product in the catalogue but not recognised is kept: the policy denies on it."""
    parsed = parse_events([vaccination(1, at(1), product="Comirnaty")], DEFAULT_VACCINES)
    assert [v.product for v in parsed.vaccinations] == ["Comirnaty"]


def test_test_documents_map_to_lab_results() -> None:
    """TEST documents become lab results sampled at the event instant."""
    parsed = parse_events(
        [
            event(1, "TEST", at(1, 9), {"method": "PCR", "result": "NEGATIVE", "laboratory": "L1"}),
            event(
                2,
                "TEST",
                at(2, 9),
                {"method": "ELISA_IGG", "result": "POSITIVE", "laboratory": "L2"},
            ),
        ],
        DEFAULT_VACCINES,
    )
    assert parsed.lab_results == (
        LabResult(LabMethod.PCR, False, at(1, 9), "L1", Registry.FEDERAL),
        LabResult(LabMethod.ELISA_IGG, True, at(2, 9), "L2", Registry.FEDERAL),
    )


def test_illness_and_recovery_are_paired_by_episode() -> None:
    """Two episodes, interleaved, each closed by its own RECOVERY; a third goes on."""
    episode_c = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
    parsed = parse_events(
        [
            event(1, "ILLNESS", at(1), {"episode": EPISODE_A, "confirmation": "PCR"}),
            event(2, "ILLNESS", at(3), {"episode": EPISODE_B, "confirmation": "CT"}),
            event(3, "RECOVERY", at(10), {"episode": EPISODE_B}),
            event(4, "RECOVERY", at(12), {"episode": EPISODE_A.upper()}),
            event(5, "ILLNESS", at(20), {"episode": episode_c, "confirmation": "DOCUMENTS"}),
        ],
        DEFAULT_VACCINES,
    )
    assert parsed.illnesses == (
        IllnessEpisode(date(2021, 3, 1), Confirmation.PCR, date(2021, 3, 12), Registry.FEDERAL),
        IllnessEpisode(date(2021, 3, 3), Confirmation.CT, date(2021, 3, 10), Registry.FEDERAL),
        IllnessEpisode(date(2021, 3, 20), Confirmation.DOCUMENTS, None, Registry.FEDERAL),
    )
    assert parsed.skipped == 0


def test_recovery_on_the_diagnosis_day_counts() -> None:
    """A RECOVERY on the same Moscow day as the ILLNESS closes it."""
    parsed = parse_events(
        [
            event(1, "ILLNESS", at(5, 8), {"episode": EPISODE_A, "confirmation": "ELISA"}),
            event(2, "RECOVERY", at(5, 18), {"episode": EPISODE_A}),
        ],
        DEFAULT_VACCINES,
    )
    assert parsed.illnesses[0].recovered_on == date(2021, 3, 5)


def test_orphan_early_and_repeated_recoveries_are_skipped() -> None:
    """RECOVERY with no ILLNESS, before the diagnosis, or a second one is skipped."""
    parsed = parse_events(
        [
            event(1, "RECOVERY", at(1), {"episode": EPISODE_A}),  # before diagnosis
            event(2, "ILLNESS", at(2), {"episode": EPISODE_A, "confirmation": "PCR"}),
            event(3, "RECOVERY", at(9), {"episode": EPISODE_B}),  # no such ILLNESS
            event(4, "RECOVERY", at(10), {"episode": EPISODE_A}),
            event(5, "RECOVERY", at(11), {"episode": EPISODE_A}),  # second one
            event(6, "ILLNESS", at(12), {"episode": EPISODE_A, "confirmation": "CT"}),  # repeat
        ],
        DEFAULT_VACCINES,
    )
    assert parsed.illnesses == (
        IllnessEpisode(date(2021, 3, 2), Confirmation.PCR, date(2021, 3, 10), Registry.FEDERAL),
    )
    assert parsed.skipped == 4


MALFORMED = [
    pytest.param("VACCINATION", "not json {", id="not-json"),
    pytest.param("VACCINATION", "[1, 2]", id="array"),
    pytest.param("VACCINATION", '"Gam-COVID-Vac"', id="string"),
    pytest.param("VACCINATION", "null", id="null"),
    pytest.param("VACCINATION", "[" * 100_000, id="deep-nesting"),
    pytest.param("VACCINATION", {"dose": 1, "series": 2}, id="no-product"),
    pytest.param("VACCINATION", {"product": "Gam-COVID-Vac", "series": 2}, id="no-dose"),
    pytest.param("VACCINATION", {"product": "Gam-COVID-Vac", "dose": 1}, id="no-series"),
    pytest.param("VACCINATION", {"product": "X-Vac", "dose": 1, "series": 2}, id="unknown-product"),
    pytest.param("VACCINATION", {"product": 7, "dose": 1, "series": 2}, id="product-not-str"),
    pytest.param(
        "VACCINATION", {"product": "Gam-COVID-Vac", "dose": "1", "series": 2}, id="dose-str"
    ),
    pytest.param("VACCINATION", {"product": "Gam-COVID-Vac", "dose": 1.0, "series": 2}, id="float"),
    pytest.param("VACCINATION", {"product": "Gam-COVID-Vac", "dose": True, "series": 2}, id="bool"),
    pytest.param("VACCINATION", {"product": "Gam-COVID-Vac", "dose": 0, "series": 2}, id="dose-0"),
    pytest.param("VACCINATION", {"product": "Gam-COVID-Vac", "dose": 1, "series": 11}, id="big"),
    pytest.param("ILLNESS", {"confirmation": "PCR"}, id="illness-no-episode"),
    pytest.param("ILLNESS", {"episode": "not-a-uuid", "confirmation": "PCR"}, id="bad-uuid"),
    pytest.param("ILLNESS", {"episode": 42, "confirmation": "PCR"}, id="episode-int"),
    pytest.param("ILLNESS", {"episode": EPISODE_A}, id="no-confirmation"),
    pytest.param("ILLNESS", {"episode": EPISODE_A, "confirmation": "XRAY"}, id="bad-confirmation"),
    pytest.param("RECOVERY", {}, id="recovery-no-episode"),
    pytest.param("RECOVERY", {"episode": None}, id="recovery-null-episode"),
    pytest.param("TEST", {"result": "NEGATIVE", "laboratory": "L"}, id="no-method"),
    pytest.param(
        "TEST", {"method": "ANTIGEN", "result": "NEGATIVE", "laboratory": "L"}, id="method"
    ),
    pytest.param("TEST", {"method": "PCR", "laboratory": "L"}, id="no-result"),
    pytest.param("TEST", {"method": "PCR", "result": "negative", "laboratory": "L"}, id="result"),
    pytest.param("TEST", {"method": "PCR", "result": False, "laboratory": "L"}, id="result-bool"),
    pytest.param("TEST", {"method": "PCR", "result": "NEGATIVE"}, id="no-laboratory"),
    pytest.param("TEST", {"method": "PCR", "result": "NEGATIVE", "laboratory": 5}, id="lab-int"),
    pytest.param("SURGERY", {"kind": "appendix"}, id="unknown-type"),
]


@pytest.mark.parametrize(("event_type", "details"), MALFORMED)
def test_malformed_document_is_skipped_and_counted(event_type: str, details: object) -> None:
    """One malformed document is skipped and counted; the good events around it survive."""
    parsed = parse_events(
        [
            vaccination(1, at(1)),
            event(2, event_type, at(2), details),
            vaccination(3, at(22), dose=2),
        ],
        DEFAULT_VACCINES,
    )
    assert [v.dose for v in parsed.vaccinations] == [1, 2]
    assert parsed.illnesses == ()
    assert parsed.lab_results == ()
    assert parsed.skipped == 1


def test_skip_warning_names_the_event_id_only(caplog: pytest.LogCaptureFixture) -> None:
    """The warning for a skipped event carries its id, not the document's content."""
    secret = "4510 123456 Иванов"
    with caplog.at_level(logging.WARNING, logger="regfed.registries.federal_events"):
        parse_events(
            [event(4242, "TEST", at(1), {"method": "PCR", "result": secret})], DEFAULT_VACCINES
        )
    assert len(caplog.records) == 1
    assert "4242" in caplog.text
    assert secret not in caplog.text
    assert "Иванов" not in caplog.text


def test_no_events_parse_to_nothing() -> None:
    """A citizen with no events has empty event lists and nothing skipped."""
    parsed = parse_events([], DEFAULT_VACCINES)
    assert (parsed.vaccinations, parsed.illnesses, parsed.lab_results, parsed.skipped) == (
        (),
        (),
        (),
        0,
    )


def test_instants_in_other_zones_are_kept_exactly() -> None:
    """A TEST's sample instant is kept as given; only dates are taken in Moscow time."""
    sampled = datetime(2021, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=5)))
    parsed = parse_events(
        [event(1, "TEST", sampled, {"method": "PCR", "result": "POSITIVE", "laboratory": "L"})],
        DEFAULT_VACCINES,
    )
    assert parsed.lab_results[0].sampled_at == sampled
