"""Who is calling: a caller's identity and role, from a client certificate or a token.

Two ways to know a caller, by the listener's configuration (README, "Production"):

- with a client CA (mutual TLS), the certificate grpcio verified at the handshake: its SAN
  DNS names, SAN URIs and subject CN are looked up, in that order, in ``[auth.certificates]``;
  the names come from the TLS auth context, never from a header a client could write;
- without one, an ``authorization: Bearer <token>`` header whose SHA-256 is in
  ``[auth.tokens]``, compared in constant time. The operators' token file
  (``REGFED_OPERATOR_TOKEN_FILE``, read by ``regfed revoke``) is one more operator token.

Credentials the mapping does not know are :class:`~regfed.errors.Unauthenticated`.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import grpc

from regfed.api.tls import TlsFiles, fingerprint
from regfed.config import Role
from regfed.errors import Unauthenticated

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: a name for the logs and the audit trail (a certificate's
    name or a token's label, never a secret and never a person's data) and a role."""

    identity: str
    role: Role


# Every caller on a loopback listener without an [auth] table: the demo, and tests.
LOOPBACK_OPERATOR = Caller("anonymous (loopback, no [auth])", "operator")

# The current call's caller, for the audit trail; set by the access interceptor.
current: contextvars.ContextVar[Caller] = contextvars.ContextVar(
    "caller", default=LOOPBACK_OPERATOR
)


class Authenticator(Protocol):
    """Knows callers by the credentials their call carries."""

    def identify(self, context: Context) -> Caller:
        """The caller of this call; Unauthenticated when the credentials are unknown."""
        ...


def token_hash(token: str) -> str:
    """How ``[auth.tokens]`` names a token: ``sha256:`` and the hex SHA-256 of its text."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


# Entries a cache of credentials seen holds before it starts over.
_CACHE_LIMIT = 4096


class TokenBook:
    """Bearer tokens known by their SHA-256 hashes."""

    def __init__(self, tokens: Mapping[Role, Iterable[str]]) -> None:
        self._entries: list[tuple[bytes, Caller]] = []
        # Header values already found known, so that a caller's every call after its
        # first costs a lookup rather than a SHA-256 and a comparison with every entry.
        # Only known tokens enter it (a caller cannot fill it by guessing), and a dict
        # lookup does not compare the text until its keyed hash (SipHash, random per
        # process) matches, so its time says nothing about how close a guess came.
        self._known: dict[str, Caller] = {}
        for role, hashes in tokens.items():
            for entry in hashes:
                digest = bytes.fromhex(entry.removeprefix("sha256:"))
                # A label that tells operators which token was used without revealing it.
                self._entries.append((digest, Caller(f"token {role}/{entry[7:15]}", role)))

    def __repr__(self) -> str:
        return f"TokenBook({len(self._entries)} tokens)"

    def __len__(self) -> int:
        return len(self._entries)

    def identify(self, context: Context) -> Caller:
        """The caller whose token's hash is known; every entry is compared (constant time)."""
        presented = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                presented = value
                break
        if presented is None:
            raise Unauthenticated("credentials required: authorization: Bearer <token>")
        known = self._known.get(presented)
        if known is not None:
            return known
        scheme, _, token = presented.partition(" ")
        digest = hashlib.sha256(token.strip().encode("utf-8")).digest()
        found: Caller | None = None
        for expected, caller in self._entries:
            # No early exit: the time taken does not say which entry matched, or how far.
            if hmac.compare_digest(digest, expected) and scheme.lower() == "bearer":
                found = caller
        if found is None:
            raise Unauthenticated("unknown credentials")
        if len(self._known) >= _CACHE_LIMIT:
            self._known.clear()
        self._known[presented] = found
        return found


class CertificateBook:
    """Client certificates (already verified against the client CA at the handshake)
    known by their SAN DNS names, SAN URIs or subject CN."""

    def __init__(self, certificates: Mapping[str, Role], tls: TlsFiles) -> None:
        self._roles = dict(certificates)
        self._tls = tls
        # Client certificates seen, by their PEM: parsed once per certificate, not per call.
        self._seen: dict[bytes, tuple[str, Caller | None]] = {}

    def identify(self, context: Context) -> Caller:
        """The caller named by the connection's certificate; Unauthenticated when the
        certificate is denylisted or maps to no role."""
        auth = cast(Mapping[str, list[bytes]], context.auth_context())
        pems = auth.get("x509_pem_cert")
        if not pems:
            # grpcio requires a certificate at the handshake when a client CA is set; a
            # call without one reached us through some other listener.
            raise Unauthenticated("a client certificate is required")
        pem = pems[0]
        known = self._seen.get(pem)
        if known is None:
            known = (fingerprint(pem), self._lookup(auth))
            if len(self._seen) >= _CACHE_LIMIT:
                self._seen.clear()
            self._seen[pem] = known
        print_, caller = known
        if self._tls.denied(print_):
            raise Unauthenticated("this client certificate is refused")
        if caller is None:
            raise Unauthenticated("this client certificate maps to no role")
        return caller

    def _lookup(self, auth: Mapping[str, list[bytes]]) -> Caller | None:
        for key in ("peer_dns", "peer_uri", "x509_common_name"):
            for raw in auth.get(key, ()):
                name = raw.decode("utf-8", errors="replace")
                role = self._roles.get(name)
                if role is not None:
                    return Caller(f"certificate {name}", role)
        return None
