"""The service's own PostgreSQL store: versioned migrations, issued certificates, stats.

People are never stored by their identifiers: callers key them with
:class:`~regfed.store.personkey.PersonKeyer` (an HMAC) before anything reaches the store.
"""

from __future__ import annotations

from regfed.store.certificates import (
    CertificateRecord,
    CertificateStore,
    DuplicateUvciError,
    StoreError,
)
from regfed.store.migrate import Migration, MigrationError, available, migrate, pending
from regfed.store.personkey import PersonKeyer

__all__ = [
    "CertificateRecord",
    "CertificateStore",
    "DuplicateUvciError",
    "Migration",
    "MigrationError",
    "PersonKeyer",
    "StoreError",
    "available",
    "migrate",
    "pending",
]
