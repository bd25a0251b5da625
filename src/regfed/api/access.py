"""Who may do what: the roles of DESIGN.md as data, enforced by a server interceptor.

The interceptor asks the listener's :class:`~regfed.api.auth.Authenticator` who the caller
is (UNAUTHENTICATED when nobody knows the credentials) and :data:`RULES` whether its role
may call the method (PERMISSION_DENIED otherwise); both go through the one error table.
Health and reflection need no role. A method of ours missing from the table is for
operators only, so a new RPC is closed until someone opens it here.

Every refusal is recorded in the audit trail, with the caller's identity when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from regfed import logs
from regfed.api import auth
from regfed.api.errors import abort_with_error
from regfed.api.wrapping import Behavior, UnaryWrapper
from regfed.config import Role
from regfed.errors import PermissionDenied, RegfedError, Unauthenticated
from regfed.service.audit import Action, AuditEntry, RefusalLog
from regfed.service.ports import Clock, utc_now

SERVICE = "/regfed.v1.CertificateService/"
# Prefixes of the methods anyone who could connect may call.
NO_ROLE_NEEDED = ("/grpc.health.v1.Health/", "/grpc.reflection.")

PORTAL: frozenset[Role] = frozenset({"portal", "operator"})
ANYONE: frozenset[Role] = frozenset({"portal", "partner", "operator"})
OPERATOR: frozenset[Role] = frozenset({"operator"})


@dataclass(frozen=True, slots=True)
class Rule:
    """The roles that may call a method; ``operator_fields``: request fields that, when
    set, make the call an operator's (Verify with ``at``)."""

    roles: frozenset[Role]
    operator_fields: tuple[str, ...] = ()

    def allows(self, role: Role, request: Any) -> bool:
        """Whether ``role`` may make this call with ``request``."""
        if role not in self.roles:
            return False
        if self.operator_fields and role not in OPERATOR:
            for name in self.operator_fields:
                if request.HasField(name):
                    return False
        return True


# DESIGN.md, "Security and operations": the roles table.
RULES: dict[str, Rule] = {
    SERVICE + "Issue": Rule(PORTAL),
    SERVICE + "SubmitApplication": Rule(PORTAL),
    SERVICE + "GetApplication": Rule(PORTAL),
    SERVICE + "Verify": Rule(ANYONE, operator_fields=("at",)),
    SERVICE + "GetTrustList": Rule(ANYONE),
    SERVICE + "Revoke": Rule(OPERATOR),
    SERVICE + "GetStats": Rule(OPERATOR),
}
_DEFAULT = Rule(OPERATOR)


class AccessInterceptor(UnaryWrapper):
    """Authenticates every call of ours and checks its role against :data:`RULES`."""

    def __init__(
        self,
        authenticator: auth.Authenticator,
        refusals: RefusalLog | None = None,
        *,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__()
        self._authenticator = authenticator
        self._refusals = refusals
        self._clock = clock

    def wrap(self, method: str, behavior: Behavior) -> Behavior | None:
        """Our methods check the caller first; health and reflection need no role."""
        if method.startswith(NO_ROLE_NEEDED):
            return None
        return self._guard(method, RULES.get(method, _DEFAULT), behavior)

    def _guard(self, method: str, rule: Rule, inner: Behavior) -> Behavior:
        authenticator = self._authenticator

        async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                caller = authenticator.identify(context)
            except Unauthenticated as exc:
                await self._refuse(context, method, None, exc)
                raise AssertionError("unreachable: the call was aborted") from None
            call = logs.call.get()
            if call is not None:
                call.role = caller.role
                call.caller = caller.identity
            if not rule.allows(caller.role, request):
                denied = PermissionDenied(f"the {caller.role} role may not call this")
                await self._refuse(context, method, caller, denied)
            token = auth.current.set(caller)
            try:
                return await inner(request, context)
            finally:
                auth.current.reset(token)

        return guarded

    async def _refuse(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        method: str,
        caller: auth.Caller | None,
        exc: RegfedError,
    ) -> None:
        if self._refusals is not None:
            self._refusals.refused(
                AuditEntry(
                    at=self._clock(),
                    action=Action.REFUSE,
                    caller=caller.identity if caller else "unknown",
                    role=caller.role if caller else None,
                    request_id=logs.request_id.get(),
                    method=method.rpartition("/")[2],
                    outcome=(
                        "UNAUTHENTICATED"
                        if isinstance(exc, Unauthenticated)
                        else "PERMISSION_DENIED"
                    ),
                )
            )
        await abort_with_error(context, exc)
