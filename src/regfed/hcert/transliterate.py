"""ICAO Doc 9303 Part 3 transliteration: the ``fnt``/``gnt`` names of an HCERT.

Checkers abroad compare a certificate with a passport, and a Russian international
passport spells names by the same ICAO table (7th edition, 2015: Ъ → IE, Ц → TS), so
``fnt``/``gnt`` match the passport's machine-readable zone letter for letter.
"""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 80  # the DCC schema's maxLength for fnt/gnt
FILLER = "<"

# ICAO 9303 Part 3, Cyrillic. Russian first; the other Cyrillic letters of the same table
# follow because registries hold names from neighbouring languages too (Ukrainian,
# Belarusian, Serbian, Macedonian), and dropping them would silently shorten a name.
_CYRILLIC = {
    "А": "A", "Б": "B", "В": "V", "Г": "G", "Д": "D", "Е": "E", "Ё": "E", "Ж": "ZH",
    "З": "Z", "И": "I", "Й": "I", "К": "K", "Л": "L", "М": "M", "Н": "N", "О": "O",
    "П": "P", "Р": "R", "С": "S", "Т": "T", "У": "U", "Ф": "F", "Х": "KH", "Ц": "TS",
    "Ч": "CH", "Ш": "SH", "Щ": "SHCH", "Ъ": "IE", "Ы": "Y", "Ь": "", "Э": "E", "Ю": "IU",
    "Я": "IA",
    "Ґ": "G", "Ѓ": "G", "Є": "IE", "Ѕ": "DZ", "І": "I", "Ї": "I", "Ј": "J", "Ќ": "K",
    "Љ": "LJ", "Њ": "NJ", "Ћ": "D", "Џ": "DZ", "Ў": "U",
}  # fmt: skip

# Latin letters that carry no decomposable diacritic, so NFKD alone would drop them
# (ICAO 9303 Part 3, the transliteration of multinational Latin characters).
_LATIN_EXTRA = {
    "Æ": "AE", "Ø": "OE", "Œ": "OE", "Ð": "D", "Đ": "D", "Þ": "TH", "Ł": "L", "Ħ": "H",
    "Ŧ": "T", "Ŋ": "N", "ẞ": "SS",
}  # fmt: skip

_SEPARATORS = frozenset(" -\u00a0\u2010\u2011\u2012\u2013\u2014\t")


def _latin(char: str) -> str:
    """Upper-case A-Z letters of one (already upper-cased) non-Cyrillic character."""
    extra = _LATIN_EXTRA.get(char)
    if extra is not None:
        return extra
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(c for c in decomposed.upper() if "A" <= c <= "Z")


def icao9303(name: str) -> str:
    """Transliterate a name to ICAO 9303 letters: upper-case A-Z, ``<`` between parts.

    Spaces and hyphens become ``<`` (runs of them one ``<``, none at either end, so a
    stray double space cannot read as the MRZ's ``<<`` name separator); Latin letters
    lose their diacritics; anything else (digits, apostrophes, dots) is dropped. The
    result matches ``^[A-Z<]*$`` and is at most 80 characters.
    """
    # NFC first: a decomposed "Е" + U+0308 must still read as "Ё", not as "Е" + noise.
    # Decomposing happens only for non-Cyrillic letters, after the table: NFKD would
    # turn "Й" into "И" + breve.
    composed = unicodedata.normalize("NFC", name)
    out: list[str] = []
    pending_separator = False
    for char in composed:
        if char in _SEPARATORS:
            pending_separator = True
            continue
        # str.upper() may expand a character ("ß" -> "SS"), hence the inner loop.
        for upper in char.upper():
            letters = _CYRILLIC.get(upper)
            if letters is None:
                letters = _latin(upper)
            if not letters:
                continue
            if pending_separator and out:
                out.append(FILLER)
            pending_separator = False
            out.append(letters)
    return "".join(out)[:MAX_LENGTH].rstrip(FILLER)
