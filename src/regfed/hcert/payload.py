"""The hcert map (EU DCC schema 1.3), the CWT claims around it, and UVCIs.

``build_hcert`` turns a policy ``Grant`` and the holder's registry name into the map
the DCC JSON schema describes; ``cwt_claims`` wraps it into the CBOR Web Token that
COSE signs. Value-set codes come from DESIGN.md and the registries' README ("Vaccines").
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

import cbor2

from regfed.domain.model import (
    IllnessEpisode,
    LabMethod,
    LabResult,
    Vaccination,
    moscow_date,
)
from regfed.domain.policy import BasisKind, Grant
from regfed.hcert.labels import (
    CLAIM_EXPIRY,
    CLAIM_HCERT,
    CLAIM_ISSUED_AT,
    CLAIM_ISSUER,
    HCERT_V1,
    UVCI_PREFIX,
)
from regfed.hcert.transliterate import icao9303

Hcert = dict[str, Any]

SCHEMA_VERSION = "1.3.0"
COUNTRY = "RU"
DISEASE_COVID19 = "840539006"  # SNOMED CT: COVID-19
VACCINE_TYPE_COVID19 = "J07BX03"  # ATC: covid-19 vaccines
TEST_TYPE_NAAT = "LP6464-4"  # LOINC: nucleic acid amplification (PCR)
TEST_NOT_DETECTED = "260415000"  # SNOMED CT: not detected
MAX_TEXT = 80  # the schema's maxLength for names, issuer, testing centre and UVCI

# Luhn mod N over the characters a UVCI may contain, in code point order.
_UVCI_ALPHABET = "/0123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _name(last_name: str, first_name: str) -> dict[str, str]:
    """``nam``: the registry's spelling (Cyrillic) and its ICAO 9303 transliteration."""
    return {
        "fn": last_name[:MAX_TEXT],
        "gn": first_name[:MAX_TEXT],
        "fnt": icao9303(last_name),
        "gnt": icao9303(first_name),
    }


def _last_valid_day(valid_until: datetime) -> date:
    """The last Moscow day a certificate valid until (excluding) ``valid_until`` covers.

    ``valid_until`` is an exclusive instant (the CWT ``exp``); a recovery from 00:00 on
    1 March for 180 days ends at 00:00 on 28 August, and its last valid day, the DCC's
    inclusive ``du``, is 27 August. Stepping back one microsecond gives that day, and
    the same day as ``valid_until`` when it falls inside a day.
    """
    return moscow_date(valid_until - timedelta(microseconds=1))


def rfc3339(instant: datetime) -> str:
    """An aware instant in UTC, to the second, with a ``Z``: what ``sc`` carries."""
    if instant.tzinfo is None:
        raise ValueError("an instant must be timezone-aware")
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _vaccination_entry(grant: Grant) -> dict[str, Any]:
    doses = [event for event in grant.basis if isinstance(event, Vaccination)]
    if grant.product is None or not doses or len(doses) != len(grant.basis):
        raise ValueError("a vaccination grant needs its product and only doses as its basis")
    last = max(doses, key=lambda dose: (dose.dose, dose.day))
    return {
        "tg": DISEASE_COVID19,
        "vp": VACCINE_TYPE_COVID19,
        "mp": grant.product.mp,
        "ma": grant.product.ma,
        "dn": len(doses),
        "sd": grant.product.doses,
        "dt": last.day.isoformat(),
    }


def _first_positive_day(grant: Grant) -> date:
    """The day of the first positive result a recovery certificate rests on."""
    event = grant.basis[0] if len(grant.basis) == 1 else None
    if grant.basis_kind is BasisKind.RECOVERY and isinstance(event, IllnessEpisode):
        return event.diagnosed_on
    if (
        grant.basis_kind is BasisKind.ANTIBODIES
        and isinstance(event, LabResult)
        and event.method is LabMethod.ELISA_IGG
        and event.positive
    ):
        return moscow_date(event.sampled_at)
    raise ValueError(f"a {grant.basis_kind.value} grant needs exactly one matching event")


def _recovery_entry(grant: Grant) -> dict[str, Any]:
    return {
        "tg": DISEASE_COVID19,
        "fr": _first_positive_day(grant).isoformat(),
        "df": moscow_date(grant.valid_from).isoformat(),
        "du": _last_valid_day(grant.valid_until).isoformat(),
    }


def _test_entry(grant: Grant) -> dict[str, Any]:
    event = grant.basis[0] if len(grant.basis) == 1 else None
    if not (isinstance(event, LabResult) and event.method is LabMethod.PCR and not event.positive):
        # Refuse rather than sign: a code saying "not detected" for anything else is a lie.
        raise ValueError("a test grant needs exactly one negative PCR result")
    entry: dict[str, Any] = {
        "tg": DISEASE_COVID19,
        "tt": TEST_TYPE_NAAT,
        "sc": rfc3339(event.sampled_at),
        "tr": TEST_NOT_DETECTED,
    }
    if event.laboratory:
        entry["tc"] = event.laboratory[:MAX_TEXT]
    return entry


def build_hcert(
    grant: Grant,
    *,
    last_name: str,
    first_name: str,
    birth_date: date,
    uvci: str,
    issuer_name: str,
    country: str = COUNTRY,
) -> Hcert:
    """The hcert map for ``grant``: ``ver``, ``nam``, ``dob`` and one ``v``/``r``/``t`` entry.

    Names are the registry's spelling (the certificate carries it, not the request's);
    ``country`` is the entry's ``co``, the issuer's own country. Raises ``ValueError``
    when the grant's basis does not fit its kind (a bug upstream: better no certificate
    than a wrong one).
    """
    if len(uvci) > MAX_TEXT or len(issuer_name) > MAX_TEXT:
        raise ValueError("uvci and issuer name are at most 80 characters")
    group: str
    if grant.basis_kind is BasisKind.VACCINATION:
        group, entry = "v", _vaccination_entry(grant)
    elif grant.basis_kind in (BasisKind.RECOVERY, BasisKind.ANTIBODIES):
        group, entry = "r", _recovery_entry(grant)
    else:
        group, entry = "t", _test_entry(grant)
    entry.update({"co": country, "is": issuer_name, "ci": uvci})
    return {
        "ver": SCHEMA_VERSION,
        "nam": _name(last_name, first_name),
        "dob": birth_date.isoformat(),
        group: [entry],
    }


def _epoch_seconds(instant: datetime) -> int:
    if instant.tzinfo is None:
        # A naive datetime's timestamp() silently uses the host's zone.
        raise ValueError("an instant must be timezone-aware")
    return int(instant.timestamp())


def cwt_claims(
    hcert: Hcert,
    *,
    issuer_country: str = COUNTRY,
    issued_at: datetime,
    expires_at: datetime,
) -> bytes:
    """The CBOR-encoded CWT ``{1: iss, 6: iat, 4: exp, -260: {1: hcert}}``, canonical.

    Canonical CBOR makes equal claims encode to equal bytes, which deterministic signing
    needs to give a byte-identical code on re-issue.
    """
    iat, exp = _epoch_seconds(issued_at), _epoch_seconds(expires_at)
    if exp <= iat:
        raise ValueError("a certificate must expire after it is issued")
    claims = {
        CLAIM_ISSUER: issuer_country,
        CLAIM_ISSUED_AT: iat,
        CLAIM_EXPIRY: exp,
        CLAIM_HCERT: {HCERT_V1: hcert},
    }
    return cbor2.dumps(claims, canonical=True)


def luhn_mod_n(text: str) -> str:
    """The Luhn mod N check character of ``text`` over the UVCI alphabet."""
    n = len(_UVCI_ALPHABET)
    total, factor = 0, 2
    for char in reversed(text):
        addend = factor * _UVCI_ALPHABET.index(char)
        total += addend // n + addend % n
        factor = 3 - factor  # alternates 2, 1, 2, ... from the rightmost character
    return _UVCI_ALPHABET[(n - total % n) % n]


def new_uvci(country: str = COUNTRY) -> str:
    """A fresh UVCI: ``URN:UVCI:01:`` + country + ``:`` + 26 random characters + ``#`` +
    the check character of those 26.

    The opaque part comes from ``secrets``: it must not reveal or be derivable from who
    the holder is, and must not be guessable (a UVCI is what a revocation names).
    """
    # 16 random bytes in base32: 26 characters of A-Z2-7, 128 bits, drawn in one call.
    opaque = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")
    return f"{UVCI_PREFIX}{country}:{opaque}#{luhn_mod_n(opaque)}"


def uvci_checksum_ok(uvci: str) -> bool:
    """Whether a UVCI in this service's format carries a correct check character."""
    country, colon, opaque = uvci.removeprefix(UVCI_PREFIX).partition(":")
    if not uvci.startswith(UVCI_PREFIX) or not country or not colon:
        return False
    # The check character itself may be ':' or '/': the '#' before it is the separator.
    body, sep, check = opaque.rpartition("#")
    if not sep or len(check) != 1 or not body:
        return False
    if any(char not in _UVCI_ALPHABET for char in body):
        return False
    return luhn_mod_n(body) == check
