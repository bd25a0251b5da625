"""The eligibility policy (DESIGN.md, "Eligibility policy"): records + now -> decision.

A pure function: no I/O, no clock of its own. Every window is configuration.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from regfed.domain.model import (
    CertificateKind,
    Confirmation,
    DenialReason,
    Event,
    PersonRecord,
)
from regfed.domain.vaccines import DEFAULT_VACCINES, VaccineProduct


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """The policy's windows and vaccine catalogue (defaults from DESIGN.md)."""

    vaccines: Mapping[str, VaccineProduct] = field(default_factory=lambda: DEFAULT_VACCINES)
    illness_active_days: int = 60
    positive_pcr_block_days: int = 14
    vaccination_valid_days: int = 365
    recovery_valid_days: int = 180
    antibodies_valid_days: int = 180
    test_valid_hours: int = 72
    recovery_confirmations: frozenset[Confirmation] = frozenset(Confirmation)


class BasisKind(enum.Enum):
    """Which rule a grant rests on (antibodies give a recovery certificate)."""

    VACCINATION = "vaccination"
    RECOVERY = "recovery"
    ANTIBODIES = "antibodies"
    PCR_TEST = "pcr_test"


@dataclass(frozen=True, slots=True)
class Grant:
    """A certificate the person may have.

    ``basis`` holds the events it rests on: for a vaccination the doses 1..series in dose
    order; for a recovery the episode; for antibodies or a test the lab result.
    """

    kind: CertificateKind
    basis_kind: BasisKind
    valid_from: datetime
    valid_until: datetime
    basis: tuple[Event, ...]
    product: VaccineProduct | None = None  # vaccination only


@dataclass(frozen=True, slots=True)
class Denial:
    """No certificate, and why."""

    reason: DenialReason


Decision = Grant | Denial


def decide(record: PersonRecord | None, now: datetime, config: PolicyConfig) -> Decision:
    """Apply the policy to what the registries know (None: nobody knows the person)."""
    raise NotImplementedError
