"""What an application seals, as bytes: the person it re-checks, and the code it got.

Both are small JSON documents, sealed by :class:`~regfed.service.sealing.Sealer` before
they reach the store. The person is what a re-check needs (the query Issue takes) and the
contact; the certificate is the hcert map the code was signed over and the registry
events it rests on, so the code can be re-signed byte for byte on every read (the
store's certificate row holds the UVCI, validity, issued-at and key, but no name).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from regfed.domain.model import (
    Confirmation,
    Event,
    IllnessEpisode,
    LabMethod,
    LabResult,
    PersonQuery,
    Registry,
    Vaccination,
)
from regfed.hcert.payload import Hcert

_VERSION = 1


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _loads(data: bytes) -> dict[str, Any]:
    document = json.loads(data.decode("utf-8"))
    if not isinstance(document, dict) or document.get("v") != _VERSION:
        raise ValueError("not a sealed application document of this version")
    return document


def encode_person(query: PersonQuery, contact: str) -> bytes:
    """The person an application re-checks, and how to reach them."""
    return _dumps(
        {
            "v": _VERSION,
            "last_name": query.last_name,
            "first_name": query.first_name,
            "middle_name": query.middle_name,
            "birth_date": query.birth_date.isoformat(),
            "snils": query.snils,
            "oms_policy": query.oms_policy,
            "passport": query.passport,
            "contact": contact,
        }
    )


def decode_person(data: bytes) -> tuple[PersonQuery, str]:
    """The query and contact :func:`encode_person` wrote."""
    doc = _loads(data)
    query = PersonQuery(
        last_name=doc["last_name"],
        first_name=doc["first_name"],
        middle_name=doc["middle_name"],
        birth_date=date.fromisoformat(doc["birth_date"]),
        snils=doc["snils"],
        oms_policy=doc["oms_policy"],
        passport=doc["passport"],
    )
    return query, str(doc["contact"])


def _event(event: Event) -> dict[str, Any]:
    if isinstance(event, Vaccination):
        return {
            "type": "vaccination",
            "product": event.product,
            "dose": event.dose,
            "day": event.day.isoformat(),
            "source": event.source.value,
        }
    if isinstance(event, IllnessEpisode):
        return {
            "type": "illness",
            "diagnosed_on": event.diagnosed_on.isoformat(),
            "confirmation": event.confirmation.value,
            "recovered_on": event.recovered_on.isoformat() if event.recovered_on else None,
            "source": event.source.value,
        }
    return {
        "type": "lab",
        "method": event.method.value,
        "positive": event.positive,
        "sampled_at": event.sampled_at.isoformat(),
        "laboratory": event.laboratory,
        "source": event.source.value,
    }


def _from_event(doc: dict[str, Any]) -> Event:
    source = Registry(doc["source"])
    if doc["type"] == "vaccination":
        return Vaccination(doc["product"], int(doc["dose"]), date.fromisoformat(doc["day"]), source)
    if doc["type"] == "illness":
        recovered = doc["recovered_on"]
        return IllnessEpisode(
            date.fromisoformat(doc["diagnosed_on"]),
            Confirmation(doc["confirmation"]),
            date.fromisoformat(recovered) if recovered else None,
            source,
        )
    if doc["type"] == "lab":
        return LabResult(
            LabMethod(doc["method"]),
            bool(doc["positive"]),
            datetime.fromisoformat(doc["sampled_at"]),
            doc["laboratory"],
            source,
        )
    raise ValueError("unknown basis event type")


def encode_certificate(hcert: Hcert, basis: tuple[Event, ...]) -> bytes:
    """The hcert map a code was signed over, and the events it rests on."""
    return _dumps({"v": _VERSION, "hcert": hcert, "basis": [_event(e) for e in basis]})


def decode_certificate(data: bytes) -> tuple[Hcert, tuple[Event, ...]]:
    """The hcert map and basis :func:`encode_certificate` wrote."""
    doc = _loads(data)
    hcert = doc["hcert"]
    if not isinstance(hcert, dict):
        raise ValueError("a sealed certificate holds an hcert map")
    return hcert, tuple(_from_event(e) for e in doc["basis"])
