"""Base45 (RFC 9285): the text encoding of HCERT QR payloads.

Base45 exists because a QR code's alphanumeric mode stores exactly these 45 characters
at 5.5 bits each, so base45 text packs denser into a QR code than base64 would.
The decoder is strict: a verifier is handed arbitrary scanned text, and accepting
non-canonical input (lower case, out-of-range groups) would let two different texts
decode to the same bytes.
"""

from __future__ import annotations

import struct

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VALUES = {char: value for value, char in enumerate(ALPHABET)}


# Every byte pair n = c + 45*d + 45²*e is written c, d, e: all 65,536 of them are looked
# up rather than computed (about 4 MB, once per process; signing every code encodes one).
_TRIPLES = [ALPHABET[n % 45] + ALPHABET[n // 45 % 45] + ALPHABET[n // 2025] for n in range(65536)]


def b45encode(data: bytes) -> str:
    """Encode bytes as base45: each two bytes become three characters, a last byte two."""
    pairs = len(data) // 2
    values = struct.unpack(f">{pairs}H", data[: 2 * pairs])
    out = "".join(map(_TRIPLES.__getitem__, values))
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += ALPHABET[c] + ALPHABET[d]
    return out


# Byte value of each ASCII character in the alphabet, 0xFF for every other byte.
_DECODE = bytes(_VALUES.get(chr(b), 0xFF) for b in range(256))


def b45decode(text: str) -> bytes:
    """Decode base45 text; raise ``ValueError`` on anything RFC 9285 does not allow.

    Rejected: characters outside the alphabet (lower case included), a length that
    leaves a single dangling character, a triplet above 65535 and a final pair above 255.
    Errors name a position, never the text: the text may be a whole personal payload.
    """
    if not text.isascii():
        position = next(i for i, char in enumerate(text) if not char.isascii())
        raise ValueError(f"base45: invalid character at position {position}")
    values = text.encode("ascii").translate(_DECODE)
    bad = values.find(0xFF)
    if bad >= 0:
        raise ValueError(f"base45: invalid character at position {bad}")
    whole, rest = divmod(len(values), 3)
    if rest == 1:
        raise ValueError("base45: dangling single character at the end")
    end = 3 * whole
    numbers = [
        c + 45 * d + 2025 * e
        for c, d, e in zip(values[0:end:3], values[1:end:3], values[2:end:3], strict=True)
    ]
    if numbers and max(numbers) > 0xFFFF:
        index = next(i for i, n in enumerate(numbers) if n > 0xFFFF)
        raise ValueError(f"base45: triplet at position {3 * index} exceeds 65535")
    out = struct.pack(f">{whole}H", *numbers)
    if rest == 2:
        n = values[end] + 45 * values[end + 1]
        if n > 0xFF:
            raise ValueError(f"base45: final pair at position {end} exceeds 255")
        out += bytes((n,))
    return out
