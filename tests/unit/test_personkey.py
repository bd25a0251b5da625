"""PersonKeyer: keyed, canonical, unambiguous person keys and basis fingerprints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regfed.service.personkey import PersonKeyer

SECRET = bytes(range(32))
SNILS = "11223344595"
OMS = "7700000000000017"
PASSPORT = "4510123456"


@pytest.fixture
def keyer() -> PersonKeyer:
    """A keyer with a fixed test secret."""
    return PersonKeyer(SECRET)


def test_person_key_is_deterministic_32_bytes(keyer: PersonKeyer) -> None:
    """The same identifiers under the same secret always give the same 32-byte key."""
    first = keyer.person_key(snils=SNILS, oms_policy=None, passport=None)
    again = PersonKeyer(SECRET).person_key(snils=SNILS, oms_policy=None, passport=None)
    assert first == again
    assert len(first) == 32


def test_person_key_depends_on_the_secret(keyer: PersonKeyer) -> None:
    """Another secret gives another key for the same person."""
    other = PersonKeyer(bytes(range(1, 33)))
    assert keyer.person_key(snils=SNILS, oms_policy=None, passport=None) != other.person_key(
        snils=SNILS, oms_policy=None, passport=None
    )


def test_person_key_does_not_contain_the_identifier(keyer: PersonKeyer) -> None:
    """The key is a hash: the identifier's digits do not appear in it."""
    key = keyer.person_key(snils=SNILS, oms_policy=None, passport=None)
    assert SNILS.encode() not in key
    assert SNILS not in key.hex()


def test_snils_wins_over_oms_and_passport(keyer: PersonKeyer) -> None:
    """With SNILS present, the key is the SNILS key whatever else is given."""
    by_snils = keyer.person_key(snils=SNILS, oms_policy=None, passport=None)
    assert keyer.person_key(snils=SNILS, oms_policy=OMS, passport=PASSPORT) == by_snils


def test_oms_wins_over_passport(keyer: PersonKeyer) -> None:
    """Without SNILS, the OMS policy decides the key."""
    by_oms = keyer.person_key(snils=None, oms_policy=OMS, passport=None)
    assert keyer.person_key(snils=None, oms_policy=OMS, passport=PASSPORT) == by_oms
    assert by_oms != keyer.person_key(snils=None, oms_policy=None, passport=PASSPORT)


def test_identifier_kind_is_part_of_the_key(keyer: PersonKeyer) -> None:
    """The same digits as a SNILS, an OMS policy or a passport give three different keys."""
    digits = "1234567890"
    keys = {
        keyer.person_key(snils=digits, oms_policy=None, passport=None),
        keyer.person_key(snils=None, oms_policy=digits, passport=None),
        keyer.person_key(snils=None, oms_policy=None, passport=digits),
    }
    assert len(keys) == 3


def test_blank_identifiers_count_as_absent(keyer: PersonKeyer) -> None:
    """Empty strings (proto3 defaults) fall through to the next identifier."""
    assert keyer.person_key(snils="", oms_policy=" ", passport=PASSPORT) == keyer.person_key(
        snils=None, oms_policy=None, passport=PASSPORT
    )


def test_separators_are_canonicalised(keyer: PersonKeyer) -> None:
    """A SNILS written with hyphens and a space keys the same person as bare digits."""
    assert keyer.person_key(snils="112-233-445 95", oms_policy=None, passport=None) == (
        keyer.person_key(snils=SNILS, oms_policy=None, passport=None)
    )


@pytest.mark.parametrize("bad", ["1122334459x", "١١٢٢٣٣٤٤٥٩٥", "112.233.445.95"])
def test_non_digit_identifier_is_refused(keyer: PersonKeyer, bad: str) -> None:
    """Anything but ASCII digits (after separators) is an error, not silently keyed."""
    with pytest.raises(ValueError, match="digits"):
        keyer.person_key(snils=bad, oms_policy=None, passport=None)


def test_no_identifier_is_refused(keyer: PersonKeyer) -> None:
    """A person key needs at least one identifier."""
    with pytest.raises(ValueError, match="needs"):
        keyer.person_key(snils=None, oms_policy="", passport=None)


@pytest.mark.parametrize("length", [0, 16, 31])
def test_short_secret_is_refused(length: int) -> None:
    """Secrets under 32 bytes are refused."""
    with pytest.raises(ValueError, match="32 bytes"):
        PersonKeyer(b"k" * length)


def test_text_secret_is_refused() -> None:
    """The secret must be bytes, not a str."""
    with pytest.raises(TypeError):
        PersonKeyer("x" * 40)  # type: ignore[arg-type]


def test_repr_hides_the_secret() -> None:
    """Neither repr nor str shows the secret or the keys derived from it."""
    secret = b"S" * 40
    keyer = PersonKeyer(secret)
    for text in (repr(keyer), str(keyer), f"{keyer}"):
        assert "redacted" in text
        assert "SSSS" not in text
        assert secret.hex() not in text
    assert not hasattr(keyer, "__dict__")


def test_fingerprint_is_deterministic_32_bytes(keyer: PersonKeyer) -> None:
    """The same parts give the same 32-byte fingerprint."""
    parts = ("vaccination", "Gam-COVID-Vac", "2021-06-01")
    assert keyer.fingerprint(*parts) == PersonKeyer(SECRET).fingerprint(*parts)
    assert len(keyer.fingerprint(*parts)) == 32


def test_fingerprint_is_unambiguous(keyer: PersonKeyer) -> None:
    """Moving a boundary between parts, or adding an empty part, changes the fingerprint."""
    assert keyer.fingerprint("ab", "c") != keyer.fingerprint("a", "bc")
    assert keyer.fingerprint("abc") != keyer.fingerprint("abc", "")
    assert keyer.fingerprint("a:b") != keyer.fingerprint("a", "b")


def test_fingerprint_never_equals_a_person_key(keyer: PersonKeyer) -> None:
    """Fingerprints and person keys are derived under separate subkeys."""
    assert keyer.fingerprint("snils:" + SNILS) != keyer.person_key(
        snils=SNILS, oms_policy=None, passport=None
    )


def test_fingerprint_needs_parts(keyer: PersonKeyer) -> None:
    """An empty basis is a caller bug."""
    with pytest.raises(ValueError, match="at least one part"):
        keyer.fingerprint()


@given(
    st.lists(st.text(max_size=6), min_size=1, max_size=4),
    st.lists(st.text(max_size=6), min_size=1, max_size=4),
)
def test_distinct_part_sequences_give_distinct_fingerprints(a: list[str], b: list[str]) -> None:
    """Any two different sequences of parts fingerprint differently."""
    keyer = PersonKeyer(SECRET)
    assert (keyer.fingerprint(*a) == keyer.fingerprint(*b)) == (a == b)
