"""The one table from regfed's errors to gRPC statuses: every error maps to its code."""

from __future__ import annotations

import pytest
from google.rpc import code_pb2, error_details_pb2

from regfed.api.errors import TABLE, new_request_id, status_of
from regfed.errors import (
    ConfigError,
    FieldViolation,
    InvalidField,
    InvalidRequest,
    KeyFileError,
    NotFound,
    NotServed,
    Overloaded,
    PermissionDenied,
    RegfedError,
    RegistriesUnavailable,
    RegistryError,
    SealedDataError,
    StoreUnavailable,
    Unauthenticated,
    Unavailable,
    UndecodableRequest,
)
from regfed.store.certificates import DuplicateUvciError

EXPECTED = [
    (
        InvalidRequest([FieldViolation("person.snils", "must be 11 digits")]),
        code_pb2.INVALID_ARGUMENT,
    ),
    (InvalidField("passport", "must be 10 digits"), code_pb2.INVALID_ARGUMENT),
    (UndecodableRequest(), code_pb2.INVALID_ARGUMENT),
    (NotFound("no certificate with this UVCI"), code_pb2.NOT_FOUND),
    (Unauthenticated("operator credentials required"), code_pb2.UNAUTHENTICATED),
    (PermissionDenied("not an operator credential"), code_pb2.PERMISSION_DENIED),
    (NotServed("applications are not served yet"), code_pb2.UNIMPLEMENTED),
    (RegistriesUnavailable("no registry answered"), code_pb2.UNAVAILABLE),
    (StoreUnavailable("certificate store: record failed"), code_pb2.UNAVAILABLE),
    (DuplicateUvciError("certificate store: record: UVCI already taken"), code_pb2.UNAVAILABLE),
    (Overloaded("server overloaded: too many calls in flight"), code_pb2.RESOURCE_EXHAUSTED),
]


@pytest.mark.parametrize(("error", "code"), EXPECTED, ids=lambda v: type(v).__name__)
def test_each_expected_error_has_its_code(error: RegfedError, code: int) -> None:
    """The status code is the one the contract documents for that failure."""
    status = status_of(error)
    assert status is not None
    assert status.code == code


def test_every_table_entry_is_exercised() -> None:
    """No entry of the table goes untested above."""
    covered = {cls for cls in TABLE if any(isinstance(e, cls) for e, _ in EXPECTED)}
    assert covered == set(TABLE)


def test_bad_input_names_each_field_in_bad_request() -> None:
    """INVALID_ARGUMENT carries google.rpc.BadRequest with one violation per field."""
    error = InvalidRequest(
        [FieldViolation("person.snils", "bad checksum"), FieldViolation("person.birth_date", "x")]
    )
    status = status_of(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["person.snils", "person.birth_date"]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (RegistriesUnavailable("x"), "REGISTRY_UNAVAILABLE"),
        (StoreUnavailable("y"), "STORE_UNAVAILABLE"),
    ],
)
def test_unavailable_says_which_dependency_and_when_to_retry(
    error: Unavailable, reason: str
) -> None:
    """UNAVAILABLE has ErrorInfo naming the dependency and RetryInfo."""
    status = status_of(error)
    assert status is not None
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == reason
    assert status.details[1].Unpack(retry)
    assert retry.retry_delay.seconds >= 1


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("SELECT * FROM patients"),
        RegistryError("city"),
        ConfigError("x"),
        KeyFileError("k"),
        SealedDataError("sealed person data does not open with the application key"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_anything_else_is_unexpected(error: Exception) -> None:
    """Errors that must never reach a caller as they are become INTERNAL (None here)."""
    assert status_of(error) is None


def test_request_ids_are_taken_only_when_plain() -> None:
    """A caller's id is logged as sent, so only short plain tokens are kept."""
    assert new_request_id("req-42", "other") == "req-42"
    assert new_request_id("", "portal:7f3a") == "portal:7f3a"
    for bad in ("a b", "x" * 65, "снилс", "id\n"):
        generated = new_request_id(bad)
        assert generated != bad
        assert len(generated) == 16
