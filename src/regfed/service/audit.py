"""The audit trail's records: who issued, who revoked, who was refused.

A caller is named by what authenticated it — a client certificate's name or a token's
label — never by anything of the person a certificate is for. Issued certificates and
revocations are written in the same statement as the change they record (the store's
``record`` and ``revoke``), so neither can exist without its row; refusals are batched
(``store/audit.py``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class Action(enum.Enum):
    """What an audit row records."""

    ISSUE = "issue"
    REVOKE = "revoke"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, and in which call: the caller's identity and role, the request id."""

    caller: str
    role: str
    request_id: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit trail."""

    at: datetime
    action: Action
    caller: str
    role: str | None  # None: a caller nobody knows (refused as unauthenticated)
    request_id: str
    method: str
    uvci: str | None = None
    outcome: str | None = None  # a refusal's status: UNAUTHENTICATED, PERMISSION_DENIED


class RefusalLog(Protocol):
    """Where refused calls are recorded."""

    def refused(self, entry: AuditEntry) -> None:
        """Record a refusal without waiting for the database."""
        ...
