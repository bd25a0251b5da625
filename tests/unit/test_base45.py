"""Base45 (RFC 9285): the published vectors, the strict decoder, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regfed.hcert.base45 import ALPHABET, b45decode, b45encode

RFC_VECTORS = [
    (b"AB", "BB8"),
    (b"Hello!!", "%69 VD92EX0"),
    (b"base-45", "UJCLQE7W581"),
    (b"ietf!", "QED8WEX0"),
    (b"", ""),
]


@pytest.mark.parametrize(("raw", "text"), RFC_VECTORS)
def test_encode_matches_rfc_9285_vectors(raw: bytes, text: str) -> None:
    """The encoder produces the RFC 9285 examples exactly."""
    assert b45encode(raw) == text


@pytest.mark.parametrize(("raw", "text"), RFC_VECTORS)
def test_decode_matches_rfc_9285_vectors(raw: bytes, text: str) -> None:
    """The decoder turns the RFC 9285 examples back into their bytes."""
    assert b45decode(text) == raw


@pytest.mark.parametrize(("text", "raw"), [("FGW", b"\xff\xff"), ("U5", b"\xff")])
def test_decode_accepts_the_largest_groups(text: str, raw: bytes) -> None:
    """A triplet of exactly 65535 and a pair of exactly 255 are valid."""
    assert b45decode(text) == raw


@pytest.mark.parametrize(
    "text",
    [
        "bb8",  # lower case is not in the alphabet
        "BB8!",  # '!' is not in the alphabet
        "BB_",  # nor is '_'
        "BB8\n",  # nor a newline
        "БB8",  # nor a Cyrillic look-alike
        "B",  # a single dangling character
        "BB8A",  # three characters then a dangling one
        "GGW",  # triplet 65536
        ":::",  # triplet 91124
        "V5",  # final pair 256
        "BB8::",  # final pair 2024 after a valid triplet
    ],
)
def test_decode_rejects_what_rfc_9285_does_not_allow(text: str) -> None:
    """Invalid characters, dangling characters and out-of-range groups raise ValueError."""
    with pytest.raises(ValueError, match="base45"):
        b45decode(text)


@given(st.binary(max_size=600))
def test_round_trip(raw: bytes) -> None:
    """Decoding an encoding gives the original bytes, and the text is 1.5x the length."""
    text = b45encode(raw)
    assert b45decode(text) == raw
    assert len(text) == len(raw) // 2 * 3 + len(raw) % 2 * 2
    assert set(text) <= set(ALPHABET)


@given(st.text(alphabet=ALPHABET, max_size=60))
def test_every_accepted_text_is_canonical(text: str) -> None:
    """Whatever the decoder accepts re-encodes to the same text: no two texts, one payload."""
    try:
        raw = b45decode(text)
    except ValueError:
        return
    assert b45encode(raw) == text
