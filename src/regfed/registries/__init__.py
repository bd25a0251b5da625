"""Registry adapters: each maps one registry's schema onto the domain model.

The rest of the service sees only :class:`RegistryAdapter`; a registry reached some other
way (a partner region over gRPC) is one more implementation of it.
"""

from regfed.registries.base import RegistryAdapter, RegistryError
from regfed.registries.city import CityRegistry
from regfed.registries.federal import FederalRegistry

__all__ = ["CityRegistry", "FederalRegistry", "RegistryAdapter", "RegistryError"]
