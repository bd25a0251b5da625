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


# A byte pair n = c + 45*d + 45²*e is written c, d, e: the first character from n % 45,
# the other two together from n // 45 (at most 1456), looked up rather than computed.
_HIGH = [ALPHABET[h % 45] + ALPHABET[h // 45] for h in range(65536 // 45 + 1)]


def b45encode(data: bytes) -> str:
    """Encode bytes as base45: each two bytes become three characters, a last byte two."""
    pairs = len(data) // 2
    values = struct.unpack(f">{pairs}H", data[: 2 * pairs])
    out = "".join([ALPHABET[n % 45] + _HIGH[n // 45] for n in values])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += ALPHABET[c] + ALPHABET[d]
    return out


def b45decode(text: str) -> bytes:
    """Decode base45 text; raise ``ValueError`` on anything RFC 9285 does not allow.

    Rejected: characters outside the alphabet (lower case included), a length that
    leaves a single dangling character, a triplet above 65535 and a final pair above 255.
    """
    values: list[int] = []
    for position, char in enumerate(text):
        value = _VALUES.get(char)
        if value is None:
            # Name the position, not the text: the text may be a whole personal payload.
            raise ValueError(f"base45: invalid character at position {position}")
        values.append(value)
    if len(values) % 3 == 1:
        raise ValueError("base45: dangling single character at the end")
    out = bytearray()
    for i in range(0, len(values) - 2, 3):
        n = values[i] + values[i + 1] * 45 + values[i + 2] * 45 * 45
        if n > 0xFFFF:
            raise ValueError(f"base45: triplet at position {i} exceeds 65535")
        out += n.to_bytes(2, "big")
    if len(values) % 3 == 2:
        n = values[-2] + values[-1] * 45
        if n > 0xFF:
            raise ValueError(f"base45: final pair at position {len(values) - 2} exceeds 255")
        out.append(n)
    return bytes(out)
