"""Operator credentials for operator-only RPCs (Revoke).

Operators present ``authorization: Bearer <token>`` metadata; the token is a secret file
on the server (``REGFED_OPERATOR_TOKEN_FILE``). Partners' mutual TLS is separate.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from regfed.errors import PermissionDenied, Unauthenticated

Metadata = Iterable[tuple[str, str | bytes]]


class OperatorAuth:
    """Checks the operator bearer token in constant time."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def __repr__(self) -> str:
        return "OperatorAuth(token=<redacted>)"

    def require(self, metadata: Metadata | None) -> None:
        """Return when ``metadata`` carries the operator token; raise otherwise."""
        presented = [
            value
            for key, value in (metadata or ())
            if key == "authorization" and isinstance(value, str)
        ]
        if not presented:
            raise Unauthenticated("operator credentials required")
        if not hmac.compare_digest(presented[0].encode(), self._expected):
            raise PermissionDenied("not an operator credential")
