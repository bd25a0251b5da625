"""Person-facing denial texts (DESIGN.md: each denial says what to do next)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from regfed.domain.denials import DENIAL_TEXT, DenialText, application_denial_text, denial_text
from regfed.domain.model import DenialReason

_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)


@pytest.mark.parametrize("reason", list(DenialReason))
def test_every_reason_has_russian_message_and_hint(reason: DenialReason) -> None:
    """Every reason has a non-empty message and hint, written in Russian."""
    text = denial_text(reason)
    assert text is DENIAL_TEXT[reason]
    for part in (text.message, text.hint):
        assert part.strip() == part
        assert part
        assert _CYRILLIC.search(part)
        assert not re.search(r"[{}<>]|TODO", part)  # no template leftovers


def test_texts_are_distinct() -> None:
    """No two reasons share a message or a hint."""
    texts = [denial_text(reason) for reason in DenialReason]
    assert len({t.message for t in texts}) == len(texts)
    assert len({t.hint for t in texts}) == len(texts)


def test_mapping_covers_exactly_the_reasons() -> None:
    """DENIAL_TEXT has one entry per reason and cannot be changed at run time."""
    assert set(DENIAL_TEXT) == set(DenialReason)
    with pytest.raises(TypeError):
        DENIAL_TEXT[DenialReason.NOT_FOUND] = DenialText("", "")  # type: ignore[index]


def test_denial_text_is_frozen() -> None:
    """A DenialText is immutable."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        denial_text(DenialReason.NO_RECORDS).message = ""  # type: ignore[misc]


@pytest.mark.parametrize(
    ("reason", "next_step"),
    [
        (DenialReason.NOT_FOUND, "заявление"),
        (DenialReason.ACTIVE_ILLNESS, "выздоровлени"),
        (DenialReason.INCOMPLETE_VACCINATION, "Завершите курс"),
        (DenialReason.VACCINE_NOT_RECOGNISED, "ПЦР-тест"),
        (DenialReason.BASIS_EXPIRED, "ПЦР-тест"),
        (DenialReason.NO_RECORDS, "поликлинику"),
    ],
)
def test_hint_names_the_next_step(reason: DenialReason, next_step: str) -> None:
    """Each hint tells the person what to do next (application, test, series, clinic)."""
    assert next_step in denial_text(reason).hint


def test_an_application_is_not_told_to_apply() -> None:
    """For a pending application, NOT_FOUND's hint says it is being re-checked instead of
    offering an application; every other reason keeps Issue's text."""
    text = application_denial_text(DenialReason.NOT_FOUND)
    assert "заявление на портале" in denial_text(DenialReason.NOT_FOUND).hint
    assert "заявление на портале" not in text.hint
    assert "проверяем" in text.hint
    assert text.message == denial_text(DenialReason.NOT_FOUND).message
    for reason in set(DenialReason) - {DenialReason.NOT_FOUND}:
        assert application_denial_text(reason) is denial_text(reason)
