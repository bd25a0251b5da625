"""Operator credentials for operator-only RPCs (Revoke).

Operators present ``authorization: Bearer <token>`` metadata; the token is a secret file
on the server (``REGFED_OPERATOR_TOKEN_FILE``). Partners' mutual TLS is separate.
"""

from __future__ import annotations

import hmac
from typing import Any

import grpc


class OperatorAuth:
    """Checks the operator bearer token in constant time."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def __repr__(self) -> str:
        return "OperatorAuth(token=<redacted>)"

    async def require(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Return when the call carries the operator token; abort it otherwise."""
        presented = [
            value
            for key, value in (context.invocation_metadata() or ())
            if key == "authorization" and isinstance(value, str)
        ]
        if not presented:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "operator credentials required")
        if not hmac.compare_digest(presented[0].encode(), self._expected):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not an operator credential")
