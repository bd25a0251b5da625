"""Identifiers and names as people type them: validated, normalised, compared.

Formats and the SNILS checksum: /work/shared/registries/README.md, "People and identifiers".
Errors name the field and what is wrong, never the value: identifiers are personal data and
error texts end up in logs and in responses.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from regfed.domain.model import PersonQuery
from regfed.errors import InvalidField

_DIGITS = frozenset("0123456789")  # str.isdigit() would also take '٣', '³', ...

# The first nine digits of SNILS numbers issued before check digits were introduced.
_SNILS_UNCHECKED_MAX = 1_001_998

_EARLIEST_BIRTH_DATE = date(1900, 1, 1)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _digits(raw: str, *, field: str, count: int, separators: str, allowed_text: str) -> str:
    """The bare digits of ``raw`` after dropping ``separators``; exactly ``count`` of them.

    ``allowed_text`` describes the accepted characters for the error message.
    """
    text = raw.strip()
    if not text:
        raise InvalidField(field, "must not be empty")
    if not set(text) <= _DIGITS | frozenset(separators):
        raise InvalidField(field, f"may contain only {allowed_text}")
    digits = "".join(ch for ch in text if ch in _DIGITS)
    if len(digits) != count:
        raise InvalidField(field, f"must be {count} digits")
    return digits


def snils_check_digits(first9: str) -> str:
    """The two SNILS check digits for its first nine digits (computed even for the old,
    unchecked range)."""
    if len(first9) != 9 or not set(first9) <= _DIGITS:
        raise ValueError("first9 must be 9 digits")
    total = sum(weight * int(digit) for weight, digit in zip(range(9, 0, -1), first9, strict=True))
    if total < 100:
        return f"{total:02d}"
    if total in (100, 101):
        return "00"
    remainder = total % 101
    return "00" if remainder == 100 else f"{remainder:02d}"


def normalise_snils(raw: str) -> str:
    """11 bare digits from ``123-456-789 01``, ``12345678901`` or ``123 456 789 01``,
    with the checksum verified (numbers up to 001-001-998 carry none)."""
    digits = _digits(
        raw, field="snils", count=11, separators="- ", allowed_text="digits, '-' and spaces"
    )
    first9, check = digits[:9], digits[9:]
    if int(first9) > _SNILS_UNCHECKED_MAX and snils_check_digits(first9) != check:
        raise InvalidField("snils", "SNILS checksum does not match")
    return digits


def normalise_oms(raw: str) -> str:
    """16 bare digits of an OMS policy number; spaces between digits are dropped."""
    return _digits(
        raw, field="oms_policy", count=16, separators=" ", allowed_text="digits and spaces"
    )


def normalise_passport(raw: str) -> str:
    """10 bare digits of a passport, series then number: ``4510 123456`` or ``4510123456``."""
    return _digits(
        raw, field="passport", count=10, separators=" ", allowed_text="digits and spaces"
    )


# Hyphen-like characters people and registries write in double names ("Анна-Мария"):
# the ASCII hyphen-minus, the Unicode hyphens, the figure dash and the en and em dashes.
_HYPHENS = str.maketrans(dict.fromkeys("-\u2010\u2011\u2012\u2013\u2014", " "))


def fold_name(name: str) -> str:
    """A name folded for comparison: case-folded, 'ё' as 'е', hyphens as spaces, whitespace
    trimmed and collapsed."""
    # NFC first, so a 'е' followed by a combining diaeresis folds like a precomposed 'ё'.
    folded = unicodedata.normalize("NFC", name).casefold().replace("ё", "е")
    return " ".join(folded.translate(_HYPHENS).split())


def names_match(a: str, b: str) -> bool:
    """Whether two spellings are the same name, ignoring case, 'ё'/'е', hyphens and spacing."""
    return fold_name(a) == fold_name(b)


def same_names(query: PersonQuery, last_name: str, first_name: str, middle_name: str) -> bool:
    """Whether a registry record's names are the query's: the surname and the given name
    always, the patronymic when both have one (registries README, "People and
    identifiers"). A record that fails this is not the person asked about, whatever its
    identifiers and birth date say."""
    if not (names_match(query.last_name, last_name) and names_match(query.first_name, first_name)):
        return False
    if not (fold_name(query.middle_name) and fold_name(middle_name)):
        return True
    return names_match(query.middle_name, middle_name)


def parse_birth_date(raw: str, today: date) -> date:
    """A birth date given strictly as ``YYYY-MM-DD``: a real date, from 1900-01-01 up to
    ``today``."""
    text = raw.strip()
    if not _ISO_DATE.fullmatch(text):
        raise InvalidField("birth_date", "must be a date in the form YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidField("birth_date", "is not a real calendar date") from None
    if day > today:
        raise InvalidField("birth_date", "must not be in the future")
    if day < _EARLIEST_BIRTH_DATE:
        raise InvalidField("birth_date", "must not be before 1900-01-01")
    return day
