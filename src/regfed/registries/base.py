"""The port every registry adapter implements.

The rest of the service sees only :class:`RegistryAdapter`: a registry reached some other
way (a partner region over gRPC) is one more implementation of it, and one more entry in
the federation's list of upstreams.
"""

from __future__ import annotations

from typing import Protocol

from regfed.domain.model import PersonQuery, PersonRecord, Registry


class RegistryAdapter(Protocol):
    """Looks a person up in one registry.

    A record is the person asked about only when one identifier of the query equals the
    record's, the birth date equals, and the names agree
    (:func:`regfed.domain.identifiers.same_names`); anything less is no match, and nothing
    of a record that is not a match may leave the adapter (not even in a log line).

    Implementations raise :class:`regfed.errors.RegistryError` for every failure of the
    registry, let ``TimeoutError`` and ``asyncio.CancelledError`` through untouched (the
    caller applies its deadline and must see its own cancellation), and must not hold a
    connection past a cancellation (``postgres/bounded.py`` terminates it).
    """

    # A read-only protocol member, so an implementation may use a plain attribute.
    @property
    def registry(self) -> Registry:
        """Which registry this adapter reads."""
        ...

    def keyed_on(self, query: PersonQuery) -> bool:
        """Whether ``query`` carries an identifier this registry is keyed on (else it is
        not asked at all, and does not know the person)."""
        ...

    async def find(self, query: PersonQuery) -> PersonRecord | None:
        """The person's record, or None when the registry does not know them.

        None also when the query carries no identifier this registry is keyed on; the
        registry is then not queried at all.
        """
        ...
