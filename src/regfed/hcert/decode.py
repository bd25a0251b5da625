"""The decode stage of verification: ``HC1:`` text to the parts of a COSE_Sign1.

Nothing here is believed yet: this stage only takes the container apart, strictly, so
that the policy stage (``verify``) can check the signature over the exact bytes received
before it reads a single claim. Every failure is a ``Malformed`` with a detail a checker
can act on; the detail never quotes the scanned content.

The strictness follows the lessons of the deployed DCC verifiers: no prefix guessing,
no lenient base45, zlib required and inflated with a cap, and no trailing data at any
layer (a verifier that ignores trailing bytes lets two different texts mean one code,
and hides garbage a checker should see).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2

from regfed.hcert.base45 import b45decode
from regfed.hcert.cose import sig_structure
from regfed.hcert.labels import COSE_SIGN1_TAG, CWT_TAG, HC1_PREFIX

MAX_CBOR_DEPTH = 16  # HCERT nests about 6 deep; a deep input is an attack, not a code
_LINE_ENDS = ("\r\n", "\n", "\r")


class Malformed(ValueError):
    """The text is not a well-formed HCERT container; ``detail`` says what is wrong."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Sign1:
    """A COSE_Sign1 taken apart (RFC 9052, section 4.2); nothing in it verified yet."""

    protected: bytes  # the protected header exactly as received: the signature covers it
    protected_header: Mapping[Any, Any]
    unprotected_header: Mapping[Any, Any]
    payload: bytes  # the CWT claims exactly as received
    signature: bytes

    def sig_structure(self) -> bytes:
        """The bytes the signature is over (RFC 9052, section 4.4), no external AAD.

        Built from the protected header and payload *as received*, never re-encoded
        from their decoded form: re-encoding would let a verifier check a signature over
        bytes the signer never saw.
        """
        return sig_structure(self.protected, self.payload)


def header_label(header: Mapping[Any, Any], label: int) -> Any:
    """The value of an integer ``label`` in a COSE header or CWT map, None when absent.

    Only genuine integer keys count: in Python ``True == 1``, so a plain ``get`` would let
    a CBOR ``true`` key pose as label 1 (alg) or a claim.
    """
    for key, value in header.items():
        if type(key) is int and key == label:
            return value
    return None


def strip_prefix(text: str) -> str:
    """The base45 part of ``text``: exactly ``HC1:`` first, one line end allowed last.

    Case-sensitive and without whitespace tolerance (HCERT spec, section 3.1; deployed
    verifiers that accepted "hc1:" or leading spaces accepted texts no issuer makes).
    One trailing CR LF, LF or CR is dropped: keyboard-wedge scanners append one.
    """
    for end in _LINE_ENDS:
        if text.endswith(end):
            text = text[: -len(end)]
            break
    if not text.startswith(HC1_PREFIX):
        raise Malformed(f"the text does not start with the {HC1_PREFIX!r} prefix")
    return text[len(HC1_PREFIX) :]


def inflate(data: bytes, max_inflated: int) -> bytes:
    """zlib-decompress ``data``, refusing more than ``max_inflated`` bytes of output.

    The cap is enforced by zlib itself (``max_length``), so a compression bomb stops
    after ``max_inflated`` bytes instead of filling memory first. zlib is required (a
    raw COSE message is refused) and nothing may follow the zlib stream.
    """
    inflater = zlib.decompressobj()
    try:
        # One byte over the cap tells "exactly at the cap" from "over it".
        out = inflater.decompress(data, max_inflated + 1)
    except zlib.error as error:
        raise Malformed(f"the payload is not a valid zlib stream ({error})") from None
    if len(out) > max_inflated:
        raise Malformed(f"the payload inflates to more than {max_inflated} bytes")
    if not inflater.eof:
        raise Malformed("the zlib stream is truncated")
    if inflater.unused_data:
        raise Malformed(f"{len(inflater.unused_data)} bytes of trailing data after the zlib stream")
    return out


def _cbor_problem(error: Exception) -> str:
    """Words for a CBOR decoding failure; cbor2's own messages may quote the content."""
    message = str(error) if isinstance(error, cbor2.CBORError) else ""
    if isinstance(error, cbor2.CBORDecodeEOF):
        return "is truncated"
    if "Duplicate map key" in message:
        return "has a map with a duplicate key"
    if "nesting depth" in message or isinstance(error, RecursionError):
        return "is nested too deeply"
    if isinstance(error, MemoryError):
        return "declares an impossible length"
    return "is not valid CBOR"


def decode_cbor(data: bytes, what: str) -> Any:
    """Exactly one CBOR item from ``data``; ``Malformed`` on bad CBOR or trailing bytes.

    Duplicate map keys are refused: two verifiers picking different copies of a label
    would disagree on what a code says.
    """
    stream = io.BytesIO(data)
    # Built outside the ``try``: a cbor2 that does not know these options (before 6.1)
    # must fail loudly as the verifier's bug, not turn every code into "not valid CBOR".
    decoder = cbor2.CBORDecoder(stream, max_depth=MAX_CBOR_DEPTH, allow_duplicate_keys=False)
    try:
        item = decoder.decode()
    except Exception as error:
        # cbor2 raises many types on hostile input (its own, ValueError, OverflowError,
        # RecursionError, MemoryError on absurd declared lengths...). ``Exception`` keeps
        # CancelledError and KeyboardInterrupt (BaseException) propagating.
        raise Malformed(f"{what} {_cbor_problem(error)}") from None
    if stream.tell() != len(data):
        raise Malformed(f"{len(data) - stream.tell()} bytes of trailing data after {what}")
    return item


def _untag(item: Any) -> Any:
    """The COSE_Sign1 array inside the tags HCERT allows: 18, 61 around 18, 61, or none."""
    if isinstance(item, cbor2.CBORTag) and item.tag == CWT_TAG:
        item = item.value
    if isinstance(item, cbor2.CBORTag) and item.tag == COSE_SIGN1_TAG:
        item = item.value
    if isinstance(item, cbor2.CBORTag):
        raise Malformed(f"unexpected CBOR tag {item.tag} (expected 18 COSE_Sign1 or 61 CWT)")
    return item


def parse_sign1(item: Any) -> Sign1:
    """The four parts of a COSE_Sign1 array, each of the type RFC 9052 requires."""
    item = _untag(item)
    if not isinstance(item, list | tuple) or len(item) != 4:
        raise Malformed("not a COSE_Sign1 message (a 4-element array)")
    protected, unprotected, payload, signature = item
    if not isinstance(protected, bytes):
        raise Malformed("the COSE protected header is not a byte string")
    if not isinstance(unprotected, Mapping):
        raise Malformed("the COSE unprotected header is not a map")
    if not isinstance(payload, bytes):
        raise Malformed("the COSE payload is not a byte string (detached payloads are not HCERT)")
    if not isinstance(signature, bytes):
        raise Malformed("the COSE signature is not a byte string")
    # RFC 9052, section 3: a zero-length protected header stands for the empty map.
    header = decode_cbor(protected, "the COSE protected header") if protected else {}
    if not isinstance(header, Mapping):
        raise Malformed("the COSE protected header is not a map")
    return Sign1(protected, header, unprotected, payload, signature)


def decode_hc1(text: str, *, max_inflated: int) -> Sign1:
    """``HC1:`` text to a COSE_Sign1, through prefix, base45, zlib and CBOR, all strict."""
    body = strip_prefix(text)
    try:
        compressed = b45decode(body)
    except ValueError as error:
        raise Malformed(str(error)) from None
    return parse_sign1(decode_cbor(inflate(compressed, max_inflated), "the COSE message"))
