"""Every error regfed's own code raises on purpose, in one place.

Only ``api/errors.py`` knows which gRPC status each becomes; everything below the API
raises these and nothing else (adapters translate asyncpg and network exceptions into
them at their edge). Messages never carry personal data, SQL or a foreign exception's
text, so they may be logged as they are.

Start-up (the operator's to fix; the server does not start):

- :class:`ConfigError` — a setting is invalid or what it points at is unusable.
- :class:`KeyFileError` — a signing key or certificate file is missing, unsafe or broken.

Requests (the caller's to fix):

- :class:`InvalidField` — one value a person typed is not acceptable (domain validation).
- :class:`InvalidRequest` — a request is malformed; its :class:`FieldViolation` list
  names every field at fault.
- :class:`UndecodableRequest` — a request's bytes are not a protobuf message of its type.
- :class:`NotFound` — the thing asked about does not exist (a UVCI, an application).
- :class:`Unauthenticated` — no credentials, or credentials nobody issued.
- :class:`PermissionDenied` — known credentials that may not do this.
- :class:`NotServed` — an operation of the contract this version does not serve yet.

Load (retryable; nobody's input was wrong):

- :class:`Overloaded` — this process has as many calls in flight as it may take.

Dependencies (retryable; nobody's input was wrong):

- :class:`Unavailable` — the answer cannot be given now. Its kinds:
  :class:`RegistriesUnavailable` (no registry answered, or a denial rests on a silent
  one) and :class:`StoreUnavailable` (the service's own database failed, timed out, or
  its circuit breaker is open).
- :class:`RegistryError` — one registry could not answer. It never reaches a caller:
  the federation turns it into a degraded answer or :class:`RegistriesUnavailable`.

Data at rest (the operator's to fix; a caller sees only INTERNAL):

- :class:`SealedDataError` — an application's sealed personal data cannot be opened with
  the configured application key (the key was replaced, or the row was tampered with).

A denial and a failed verification are answers, not errors: they are never raised.
"""

from __future__ import annotations

from dataclasses import dataclass


class RegfedError(Exception):
    """Base of regfed's own errors."""


# --- start-up --------------------------------------------------------------------------


class ConfigError(RegfedError):
    """The configuration is invalid; the message names the setting."""


class KeyFileError(ConfigError):
    """A signing key or certificate file is missing, unreadable, unsafe or unusable.

    Messages name the file and the problem, never the file's content.
    """


# --- requests ---------------------------------------------------------------------------


class InvalidField(RegfedError, ValueError):
    """A value a person gave is not acceptable; ``description`` says why, in English."""

    def __init__(self, field: str, description: str) -> None:
        """Name the request field and what is wrong with it (never the value itself)."""
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One field of a request and what is wrong with it."""

    field: str
    description: str


class InvalidRequest(RegfedError):
    """The request is malformed; ``violations`` says where."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))
        self.violations = violations


class UndecodableRequest(RegfedError):
    """The request's bytes do not decode as its message type. The message is fixed: the
    parser's own text would echo what the caller sent."""

    def __init__(self) -> None:
        super().__init__("invalid request: the message could not be decoded")


class NotFound(RegfedError):
    """What the request names does not exist."""


class Unauthenticated(RegfedError):
    """The caller presented no credentials, or credentials that are not known."""


class PermissionDenied(RegfedError):
    """The caller is known but may not do this."""


class NotServed(RegfedError):
    """The contract has this operation, but this version does not serve it."""


# --- load -------------------------------------------------------------------------------


class Overloaded(RegfedError):
    """This process has as many calls in flight as it may take; try again shortly."""

    reason = "OVERLOADED"


# --- dependencies -----------------------------------------------------------------------


class Unavailable(RegfedError):
    """The answer cannot be given now; asking again later may succeed.

    ``reason`` is a stable machine-readable word (google.rpc.ErrorInfo's reason).
    """

    reason = "UNAVAILABLE"


class RegistriesUnavailable(Unavailable):
    """No registry answered, or a denial would rest on a registry that did not answer."""

    reason = "REGISTRY_UNAVAILABLE"


class StoreUnavailable(Unavailable):
    """The service's own database failed or could not be reached."""

    reason = "STORE_UNAVAILABLE"


class RegistryError(RegfedError):
    """One registry could not answer (unreachable, refused, broken schema, ...).

    The message names the registry and the kind of failure only.
    """


# --- data at rest -----------------------------------------------------------------------


class SealedDataError(RegfedError):
    """Sealed data cannot be opened: the application key is not the one that sealed it, or
    the ciphertext (or the row it is bound to) was altered. Never retryable by a caller.

    The message names what could not be opened, never its content.
    """
