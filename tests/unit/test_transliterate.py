"""ICAO Doc 9303 Part 3 transliteration of holder names (``fnt``/``gnt``)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regfed.hcert.transliterate import icao9303

ICAO_RUSSIAN = {
    "А": "A", "Б": "B", "В": "V", "Г": "G", "Д": "D", "Е": "E", "Ё": "E", "Ж": "ZH",
    "З": "Z", "И": "I", "Й": "I", "К": "K", "Л": "L", "М": "M", "Н": "N", "О": "O",
    "П": "P", "Р": "R", "С": "S", "Т": "T", "У": "U", "Ф": "F", "Х": "KH", "Ц": "TS",
    "Ч": "CH", "Ш": "SH", "Щ": "SHCH", "Ъ": "IE", "Ы": "Y", "Ь": "", "Э": "E", "Ю": "IU",
    "Я": "IA",
}  # fmt: skip

ICAO_PATTERN = re.compile(r"^[A-Z<]*$")


@pytest.mark.parametrize(("letter", "latin"), sorted(ICAO_RUSSIAN.items()))
def test_each_russian_letter_follows_the_icao_table(letter: str, latin: str) -> None:
    """Every Russian letter, upper and lower case, maps as ICAO 9303 Part 3 says."""
    assert icao9303(letter) == latin
    assert icao9303(letter.lower()) == latin


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Щукина-Ёлкина Анна", "SHCHUKINA<ELKINA<ANNA"),
        ("Щукина-Ёлкина", "SHCHUKINA<ELKINA"),
        ("ЖУРАВЛЁВ", "ZHURAVLEV"),
        ("Юлия", "IULIIA"),
        ("Подъячев", "PODIEIACHEV"),  # П-О-Д-Ъ(IE)-Я(IA)-Ч-Е-В
        ("Ольга", "OLGA"),  # Ь is dropped
        ("Цветаева", "TSVETAEVA"),
        ("Хрущёв", "KHRUSHCHEV"),
        ("Майя", "MAIIA"),
        ("Е\u0308лкин", "ELKIN"),  # a decomposed Ё still reads as Ё
    ],
)
def test_russian_names(name: str, expected: str) -> None:
    """Whole Russian names transliterate as on a Russian international passport."""
    assert icao9303(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("d'Červenková Panklová", "DCERVENKOVA<PANKLOVA"),  # the DCC schema's own example
        ("Jiřina-Maria Alena", "JIRINA<MARIA<ALENA"),
        ("Straße", "STRASSE"),
        ("Øster", "OESTER"),
        ("smith", "SMITH"),
    ],
)
def test_latin_names_lose_diacritics(name: str, expected: str) -> None:
    """Latin letters are upper-cased and stripped of diacritics; apostrophes are dropped."""
    assert icao9303(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("  Анна  ", "ANNA"),
        ("Анна  Мария", "ANNA<MARIIA"),
        ("Анна - Мария", "ANNA<MARIIA"),
        ("Анна 2-я", "ANNA<IA"),
        ("-", ""),
        ("", ""),
        ("Ь", ""),
    ],
)
def test_separators_collapse_and_never_lead_or_trail(name: str, expected: str) -> None:
    """Runs of spaces/hyphens give one '<' between parts and none at either end."""
    assert icao9303(name) == expected


def test_long_names_are_cut_to_80_characters() -> None:
    """The DCC schema allows at most 80 characters; no '<' is left dangling at the cut."""
    result = icao9303("Щ" * 19 + " " + "Анна" * 10)
    assert len(result) <= 80
    assert not result.endswith("<")
    assert result.startswith("SHCH" * 19)


@given(st.text(max_size=200))
def test_output_is_always_icao_letters(name: str) -> None:
    """Whatever the input, the output matches ^[A-Z<]*$ and fits in 80 characters."""
    result = icao9303(name)
    assert ICAO_PATTERN.match(result)
    assert len(result) <= 80
    assert not result.startswith("<")
    assert not result.endswith("<")
    assert "<<" not in result
