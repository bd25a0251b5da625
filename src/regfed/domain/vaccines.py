"""The vaccine catalogue: registry product codes, series length, recognition, HCERT codes.

The catalogue is configuration, not code: a region may recognise more products later
(``PolicyConfig.vaccines`` can be replaced from the config file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class VaccineProduct:
    """One vaccine product as both registries code it."""

    code: str  # the registry code, e.g. "Gam-COVID-Vac"
    name: str  # human-readable, e.g. "Sputnik V"
    doses: int  # doses in a complete series
    recognised: bool  # registered in the Russian Federation: only these count
    mp: str  # HCERT medicinal product
    ma: str  # HCERT marketing-authorisation holder / manufacturer


DEFAULT_VACCINES: Mapping[str, VaccineProduct] = MappingProxyType(
    {
        p.code: p
        for p in (
            VaccineProduct(
                "Gam-COVID-Vac", "Sputnik V", 2, True, "Sputnik-V", "Gamaleya-Research-Institute"
            ),
            VaccineProduct(
                "Sputnik-Light",
                "Sputnik Light",
                1,
                True,
                "Sputnik-Light",
                "Gamaleya-Research-Institute",
            ),
            VaccineProduct(
                "EpiVacCorona", "EpiVacCorona", 2, True, "EpiVacCorona", "Vector-Institute"
            ),
            VaccineProduct(
                "CoviVac", "CoviVac", 2, True, "CoviVac", "Chumakov-Federal-Scientific-Center"
            ),
            VaccineProduct(
                "Comirnaty", "Pfizer-BioNTech", 2, False, "EU/1/20/1528", "ORG-100030215"
            ),
            VaccineProduct("Spikevax", "Moderna", 2, False, "EU/1/20/1507", "ORG-100031184"),
            VaccineProduct("Vaxzevria", "AstraZeneca", 2, False, "EU/1/21/1529", "ORG-100001699"),
            VaccineProduct("Jcovden", "Janssen", 1, False, "EU/1/20/1525", "ORG-100001417"),
        )
    }
)
