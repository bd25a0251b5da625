"""Bearer tokens known by their hashes: what the per-caller cache must not change."""

from __future__ import annotations

from typing import Any

import pytest

from regfed.api.auth import TokenBook, token_hash
from regfed.errors import Unauthenticated

pytestmark = pytest.mark.unit

PORTAL = "portal-token-" + "7" * 40
PARTNER = "partner-token-" + "3" * 40


class Metadata:
    """What TokenBook reads of a call: its invocation metadata."""

    def __init__(self, *pairs: tuple[str, str]) -> None:
        self._pairs = pairs

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._pairs


def book() -> TokenBook:
    return TokenBook({"portal": [token_hash(PORTAL)], "partner": [token_hash(PARTNER)]})


def call(header: str | None) -> Any:
    return Metadata(("user-agent", "test"), *((("authorization", header),) if header else ()))


def test_a_known_token_is_its_role_on_every_call() -> None:
    tokens = book()
    first = tokens.identify(call(f"Bearer {PORTAL}"))
    assert first.role == "portal"
    assert PORTAL not in first.identity
    assert tokens.identify(call(f"Bearer {PORTAL}")) is first
    assert tokens.identify(call(f"bearer  {PARTNER} ")).role == "partner"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", f"Bearer {PORTAL}x", f"Basic {PORTAL}", PORTAL, f"Bearer {PORTAL[:-1]}"],
)
def test_anything_else_is_unauthenticated_before_and_after_the_token_was_seen(
    header: str | None,
) -> None:
    tokens = book()
    with pytest.raises(Unauthenticated):
        tokens.identify(call(header))
    tokens.identify(call(f"Bearer {PORTAL}"))
    with pytest.raises(Unauthenticated):
        tokens.identify(call(header))
