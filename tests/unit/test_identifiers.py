"""Identifier and name handling (registries/README.md, "People and identifiers")."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regfed.domain.identifiers import (
    fold_name,
    names_match,
    normalise_oms,
    normalise_passport,
    normalise_snils,
    parse_birth_date,
    same_names,
    snils_check_digits,
)
from regfed.domain.model import PersonQuery
from regfed.errors import InvalidField
from regfed.registries.federal import format_passport_federal, format_snils_federal

TODAY = date(2021, 7, 15)
UNCHECKED_MAX = 1_001_998  # first nine digits up to 001-001-998 carry no checksum


def styles(digits11: str) -> list[str]:
    """Every accepted way to type one SNILS."""
    d = digits11
    return [
        d,
        f"{d[:3]}-{d[3:6]}-{d[6:9]} {d[9:]}",
        f"{d[:3]} {d[3:6]} {d[6:9]} {d[9:]}",
        f"{d[:3]}-{d[3:6]}-{d[6:9]}-{d[9:]}",
        f"  {d[:3]}-{d[3:6]}-{d[6:9]}  {d[9:]} ",
    ]


# --- SNILS -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first9", "check"),
    [
        ("112233445", "95"),  # S = 95 < 100: S itself
        ("001001999", "65"),  # the first number with a checksum
        ("001508815", "00"),  # S = 100
        ("001437544", "00"),  # S = 101
        ("001168298", "06"),  # S = 107: S mod 101 = 6, zero-padded
        ("006996682", "00"),  # S = 201: S mod 101 = 100 -> 00
    ],
)
def test_snils_check_digits_every_branch(first9: str, check: str) -> None:
    """The checksum follows each branch of the README's rule."""
    assert snils_check_digits(first9) == check


@pytest.mark.parametrize("bad", ["", "12345678", "1234567890", "12345678a", "١٢٣٤٥٦٧٨٩"])
def test_snils_check_digits_needs_nine_ascii_digits(bad: str) -> None:
    """The helper refuses anything but nine ASCII digits."""
    with pytest.raises(ValueError, match="9 digits"):
        snils_check_digits(bad)


@pytest.mark.parametrize("raw", styles("11223344595"))
def test_normalise_snils_accepts_every_style(raw: str) -> None:
    """Bare digits, the federal style, spaces and dashes all normalise to 11 digits."""
    assert normalise_snils(raw) == "11223344595"


@pytest.mark.parametrize("raw", ["112-233-445 96", "11223344559", "001-001-999 66"])
def test_normalise_snils_rejects_a_wrong_checksum(raw: str) -> None:
    """A wrong checksum is bad input, named as such."""
    with pytest.raises(InvalidField) as caught:
        normalise_snils(raw)
    assert caught.value.field == "snils"
    assert caught.value.description == "SNILS checksum does not match"


@pytest.mark.parametrize("raw", ["000-000-000 00", "001-001-998 99", "001-001-998 00"])
def test_normalise_snils_old_numbers_carry_no_checksum(raw: str) -> None:
    """Numbers up to 001-001-998 are accepted with any check digits."""
    assert normalise_snils(raw) == raw.replace("-", "").replace(" ", "")


@pytest.mark.parametrize(
    ("raw", "description"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("1122334459", "must be 11 digits"),
        ("112233445955", "must be 11 digits"),
        ("112.233.445 95", "may contain only digits, '-' and spaces"),
        ("112-233-445_95", "may contain only digits, '-' and spaces"),
        ("1122334459O", "may contain only digits, '-' and spaces"),
        ("١١٢٢٣٣٤٤٥٩٥", "may contain only digits, '-' and spaces"),
    ],
)
def test_normalise_snils_rejects_malformed_input(raw: str, description: str) -> None:
    """Wrong length or characters: InvalidField on 'snils' saying what is wrong."""
    with pytest.raises(InvalidField) as caught:
        normalise_snils(raw)
    assert (caught.value.field, caught.value.description) == ("snils", description)


def test_invalid_field_never_carries_the_value() -> None:
    """Neither the description nor str(error) repeats the offending value (personal data)."""
    for raw in ("112-233-445 96", "1122334459", "11223344X95"):
        with pytest.raises(InvalidField) as caught:
            normalise_snils(raw)
        text = f"{caught.value} {caught.value.description} {caught.value.args}"
        assert raw not in text
        assert "1122" not in text


def test_format_snils_federal() -> None:
    """The federal spelling is XXX-XXX-XXX YY and normalises back."""
    assert format_snils_federal("11223344595") == "112-233-445 95"
    assert normalise_snils(format_snils_federal("11223344595")) == "11223344595"
    with pytest.raises(ValueError, match="11 digits"):
        format_snils_federal("112-233-445 95")


@given(st.integers(UNCHECKED_MAX + 1, 999_999_999))
def test_property_every_prefix_with_its_check_digits_normalises(prefix: int) -> None:
    """Any nine digits with their computed check digits are valid in every accepted style."""
    first9 = f"{prefix:09d}"
    digits = first9 + snils_check_digits(first9)
    for raw in styles(digits):
        assert normalise_snils(raw) == digits


@given(
    st.integers(UNCHECKED_MAX + 1, 999_999_999),
    st.sampled_from([0, 1]),
    st.integers(1, 9),
)
def test_property_changing_a_check_digit_fails(prefix: int, position: int, shift: int) -> None:
    """Above the unchecked range, altering either check digit makes the SNILS invalid."""
    first9 = f"{prefix:09d}"
    check = list(snils_check_digits(first9))
    check[position] = str((int(check[position]) + shift) % 10)
    with pytest.raises(InvalidField, match="checksum"):
        normalise_snils(first9 + "".join(check))


@given(st.integers(0, UNCHECKED_MAX), st.integers(0, 99))
def test_property_unchecked_range_accepts_any_check_digits(prefix: int, check: int) -> None:
    """Up to 001-001-998 any two check digits are accepted."""
    digits = f"{prefix:09d}{check:02d}"
    assert normalise_snils(digits) == digits


# --- OMS policy and passport ---------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1234567890123456", "1234 5678 9012 3456", " 1234567890123456 "])
def test_normalise_oms(raw: str) -> None:
    """16 digits, spaces allowed between them."""
    assert normalise_oms(raw) == "1234567890123456"


@pytest.mark.parametrize(
    ("raw", "description"),
    [
        ("", "must not be empty"),
        ("123456789012345", "must be 16 digits"),
        ("12345678901234567", "must be 16 digits"),
        ("1234-5678-9012-3456", "may contain only digits and spaces"),
    ],
)
def test_normalise_oms_rejects(raw: str, description: str) -> None:
    """Wrong length or characters: InvalidField on 'oms_policy'."""
    with pytest.raises(InvalidField) as caught:
        normalise_oms(raw)
    assert (caught.value.field, caught.value.description) == ("oms_policy", description)


@pytest.mark.parametrize("raw", ["4510 123456", "4510123456", "45 10 123456"])
def test_normalise_passport(raw: str) -> None:
    """10 digits, series and number, spaces allowed."""
    assert normalise_passport(raw) == "4510123456"


@pytest.mark.parametrize(
    ("raw", "description"),
    [
        ("", "must not be empty"),
        ("4510 12345", "must be 10 digits"),
        ("4510 1234567", "must be 10 digits"),
        ("4510-123456", "may contain only digits and spaces"),
        ("45АБ 123456", "may contain only digits and spaces"),
    ],
)
def test_normalise_passport_rejects(raw: str, description: str) -> None:
    """Wrong length or characters: InvalidField on 'passport'."""
    with pytest.raises(InvalidField) as caught:
        normalise_passport(raw)
    assert (caught.value.field, caught.value.description) == ("passport", description)


def test_format_passport_federal() -> None:
    """The federal spelling is SSSS NNNNNN and normalises back."""
    assert format_passport_federal("4510123456") == "4510 123456"
    assert normalise_passport(format_passport_federal("4510123456")) == "4510123456"
    with pytest.raises(ValueError, match="10 digits"):
        format_passport_federal("4510 123456")


# --- names -------------------------------------------------------------------------------


def test_fold_name() -> None:
    """Case-folded, 'ё' as 'е', hyphens as spaces, trimmed, inner whitespace collapsed."""
    assert fold_name("  Семёнова   Алёна\tЁжиковна ") == "семенова алена ежиковна"
    assert fold_name("Римский-Корсаков") == fold_name("Римский\u2010Корсаков") == "римский корсаков"


def test_fold_name_handles_decomposed_yo() -> None:
    """'е' plus a combining diaeresis folds like a precomposed 'ё'."""
    assert fold_name("Сем\u0435\u0308нов") == "семенов"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("СЕМЁНОВ", "семенов", True),
        ("Ёлкин", "елкин", True),
        ("Анна  Мария", "анна мария", True),
        ("Иванов", "Иванова", False),
        ("Анна-Мария", "Анна Мария", True),
        ("Анна - Мария", "анна мария", True),
        ("АннаМария", "Анна Мария", False),
        ("Иван", "Ivan", False),
    ],
)
def test_names_match(a: str, b: str, same: bool) -> None:
    """Names match ignoring case, 'ё'/'е', hyphens and spacing, and nothing else."""
    assert names_match(a, b) is same


SIDOROV = PersonQuery("Сидоров", "Пётр", "Петрович", date(1980, 5, 17), snils="11223344595")


@pytest.mark.parametrize(
    ("record", "same"),
    [
        (("СИДОРОВ", "петр", "Петрович"), True),
        (("Сидоров", "Пётр", ""), True),  # the registry has no patronymic: not compared
        (("Сидоров", "Пётр", "Иванович"), False),  # both have one: compared
        (("Сидоров", "Павел", "Петрович"), False),
        (("Петров", "Пётр", "Петрович"), False),
        (("", "", ""), False),
    ],
)
def test_same_names(record: tuple[str, str, str], same: bool) -> None:
    """A record is the person only when surname and given name agree, and the patronymic
    too when both sides have one."""
    assert same_names(SIDOROV, *record) is same


def test_same_names_without_a_patronymic_in_the_request() -> None:
    """A request without a patronymic matches a record with one."""
    query = PersonQuery("Сидоров", "Пётр", "", date(1980, 5, 17), snils="11223344595")
    assert same_names(query, "Сидоров", "Пётр", "Петрович")


# --- birth date --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1980-05-17", date(1980, 5, 17)),
        ("1900-01-01", date(1900, 1, 1)),
        ("2021-07-15", TODAY),
        ("2020-02-29", date(2020, 2, 29)),
        (" 1980-05-17 ", date(1980, 5, 17)),
    ],
)
def test_parse_birth_date(raw: str, expected: date) -> None:
    """YYYY-MM-DD from 1900-01-01 up to today inclusive; surrounding spaces are trimmed."""
    assert parse_birth_date(raw, TODAY) == expected


@pytest.mark.parametrize(
    ("raw", "description"),
    [
        ("", "must be a date in the form YYYY-MM-DD"),
        ("17.05.1980", "must be a date in the form YYYY-MM-DD"),
        ("19800517", "must be a date in the form YYYY-MM-DD"),
        ("1980-5-17", "must be a date in the form YYYY-MM-DD"),
        ("1980-05-17T00:00", "must be a date in the form YYYY-MM-DD"),
        ("١٩٨٠-٠٥-١٧", "must be a date in the form YYYY-MM-DD"),
        ("2021-02-29", "is not a real calendar date"),
        ("1980-13-01", "is not a real calendar date"),
        ("1980-00-10", "is not a real calendar date"),
        ("2021-07-16", "must not be in the future"),
        ("1899-12-31", "must not be before 1900-01-01"),
    ],
)
def test_parse_birth_date_rejects(raw: str, description: str) -> None:
    """Other formats, impossible dates, future dates and pre-1900 dates are bad input."""
    with pytest.raises(InvalidField) as caught:
        parse_birth_date(raw, TODAY)
    assert (caught.value.field, caught.value.description) == ("birth_date", description)
