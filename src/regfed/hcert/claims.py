"""Reading a code's CWT claims and hcert, once its signature has held.

Nothing here is believed before ``verify`` has checked the signature over the exact bytes
received; this only reads what the issuer signed, strictly, into :class:`Claims`. Every
problem is a ``Malformed`` whose detail names the field, never its content.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from regfed.domain.model import CertificateKind, moscow_midnight
from regfed.hcert.decode import Malformed, decode_cbor, header_label
from regfed.hcert.labels import CLAIM_EXPIRY, CLAIM_HCERT, CLAIM_ISSUED_AT, CLAIM_ISSUER, HCERT_V1

_GROUPS = {
    "v": CertificateKind.VACCINATION,
    "t": CertificateKind.TEST,
    "r": CertificateKind.RECOVERY,
}
# Where each kind states the validity it certifies (DCC schema): the vaccination's date,
# the recovery's "valid from" date, the test's sample collection time.
_VALIDITY_FIELDS = {"v": "dt", "r": "df", "t": "sc"}
_ISO_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)", re.ASCII)
_ISO_TIME = re.compile(
    r"T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?(Z|[+-]\d\d:?\d\d)?", re.ASCII | re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Claims:
    """What a signed code says."""

    issuer: str
    issued_at: datetime
    expires_at: datetime
    kind: CertificateKind
    uvci: str
    valid_from: datetime
    holder_name: str
    holder_birth_date: str


def _instant(claims: Mapping[Any, Any], label: int, name: str) -> datetime:
    value = header_label(claims, label)
    if type(value) not in (int, float) or not math.isfinite(value):
        raise Malformed(f"CWT claim {label} ({name}) is missing or not a number")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise Malformed(f"CWT claim {label} ({name}) is out of range") from None


def _text(mapping: Mapping[Any, Any], key: str, where: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str):
        raise Malformed(f"hcert {where}{key!r} is missing or not a text string")
    return value


def _the_group(hcert: Mapping[Any, Any]) -> tuple[str, Sequence[Any]]:
    """The one non-empty group of ``hcert`` (v, t or r) and its entries.

    hcert 1.0.x-1.2.x maps, issued in the spring of 2021, may carry the groups that do not
    apply as null or an empty array, and a group of several entries (each dose of a
    vaccination). Schema 1.3 allows neither, but reading them is unambiguous, so they are
    read whatever ``ver`` says. Two non-empty groups are not: which would the code certify?
    """
    found: list[tuple[str, Sequence[Any]]] = []
    for group in _GROUPS:
        entries = hcert.get(group)
        if entries is None:
            continue
        if not isinstance(entries, list | tuple):
            raise Malformed(f"hcert {group!r} is not an array")
        if entries:
            found.append((group, entries))
    if len(found) != 1:
        names = " and ".join(group for group, _ in found) or "none"
        raise Malformed(
            f"the hcert must hold exactly one non-empty group of v, t, r (found {names})"
        )
    return found[0]


def _latest_entry(group: str, entries: Sequence[Any]) -> Mapping[Any, Any]:
    """The entry that counts: the highest dose number (``dn``) of a vaccination group,
    the last-listed of equals; the last entry of a test or recovery group."""
    maps = [entry for entry in entries if isinstance(entry, Mapping)]
    if len(maps) != len(entries):
        raise Malformed(f"an hcert {group!r} entry is not a map")
    if len(maps) == 1 or group != "v":
        return maps[-1]
    doses = [entry.get("dn") for entry in maps]
    # bool is an int in Python, but a CBOR true is no dose number.
    if not all(type(dose) is int and dose >= 1 for dose in doses):
        raise Malformed("each of several hcert 'v' entries needs a dose number 'dn' (an integer)")
    latest = max(range(len(maps)), key=lambda index: (doses[index], index))
    return maps[latest]


def _zone(text: str | None) -> timezone:
    """The offset of an ISO 8601 time: ``Z``, ``+hh:mm`` or ``+hhmm``; none is read as UTC
    (RFC 3339 wants one, but some early issuers left it out)."""
    if text is None or text in ("Z", "z"):
        return UTC
    digits = text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return timezone(-offset if text[0] == "-" else offset)  # ValueError past 24 hours


def _valid_from(group: str, entry: Mapping[Any, Any]) -> datetime:
    """The instant from which the certificate says it holds.

    A date (``dt``, ``df``) counts from 00:00 Moscow time that day, as this service's own
    certificates do; a test's ``sc`` is an instant. Some early issuers wrote a date-time
    where the schema wants a date: its date, as written, counts.
    """
    key = _VALIDITY_FIELDS[group]
    text = _text(entry, key, f"{group!r} entry's ")
    problem = f"hcert {group!r} entry's {key!r} is not an ISO 8601 date or date-time"
    day_match = _ISO_DATE.match(text)
    time_match = _ISO_TIME.fullmatch(text, day_match.end()) if day_match else None
    if day_match is None or (time_match is None and day_match.end() != len(text)):
        raise Malformed(problem)
    try:
        day = date(*(int(part) for part in day_match.groups()))
        if time_match is None or group != "t":
            return moscow_midnight(day)
        hour, minute, second, fraction, zone = time_match.groups()
        micros = int((fraction or "0")[:6].ljust(6, "0"))
        clock = time(int(hour), int(minute), int(second or 0), micros)
        return datetime.combine(day, clock, tzinfo=_zone(zone))
    except ValueError:
        raise Malformed(problem) from None


def _holder(hcert: Mapping[Any, Any]) -> tuple[str, str]:
    """(holder name, birth date): what a checker compares with an ID."""
    names = hcert.get("nam")
    if not isinstance(names, Mapping):
        raise Malformed("hcert 'nam' is missing or not a map")
    parts = [_text(names, "fnt", "nam's ")]
    if names.get("gnt") is not None:
        parts.append(_text(names, "gnt", "nam's "))
    # ICAO 9303 uses "<" for spaces and hyphens; a checker reads names with spaces.
    return " ".join(parts).replace("<", " "), _text(hcert, "dob", "")


def read_claims(payload: bytes) -> Claims:
    """The CWT claims and the hcert inside (RFC 8392; HCERT spec, section 3.3.1)."""
    claims = decode_cbor(payload, "the CWT claims")
    if not isinstance(claims, Mapping):
        raise Malformed("the CWT claims are not a map")
    issuer = header_label(claims, CLAIM_ISSUER)
    if not isinstance(issuer, str):
        raise Malformed("CWT claim 1 (issuer) is missing or not a text string")
    expires_at = _instant(claims, CLAIM_EXPIRY, "expiry")
    issued_at = _instant(claims, CLAIM_ISSUED_AT, "issued at")
    container = header_label(claims, CLAIM_HCERT)
    hcert = header_label(container, HCERT_V1) if isinstance(container, Mapping) else None
    if not isinstance(hcert, Mapping):
        raise Malformed("CWT claim -260 does not hold {1: hcert map}")
    group, entries = _the_group(hcert)
    entry = _latest_entry(group, entries)
    uvci = _text(entry, "ci", f"{group!r} entry's ")
    valid_from = _valid_from(group, entry)
    holder, birth_date = _holder(hcert)
    return Claims(
        issuer=issuer,
        issued_at=issued_at,
        expires_at=expires_at,
        kind=_GROUPS[group],
        uvci=uvci,
        valid_from=valid_from,
        holder_name=holder,
        holder_birth_date=birth_date,
    )
