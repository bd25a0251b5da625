"""The service's own PostgreSQL store: versioned migrations, issued certificates,
revocations and statistics.

People are never stored by their identifiers: the use cases key them with
:class:`~regfed.service.personkey.PersonKeyer` (an HMAC) before anything reaches the store.
"""
