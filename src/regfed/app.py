"""The composition root: settings -> databases, pools, adapters, signer, store -> server.

Everything is opened here, in order, and closed here, in reverse order. Nothing opens a
pool or reads the environment at import time.

Start-up does not depend on the databases being up: pools open without connecting, a
registry that is down degrades answers (its circuit breaker opens), and the store is
migrated by its monitor when it first answers — the server waits for that first check at
most ``store_timeout`` seconds and otherwise starts NOT_SERVING, turning SERVING by
itself when the store appears. Shutdown: NOT_SERVING at once, new calls still taken for
``drain_delay`` seconds, then in-flight calls get ``grace`` seconds, then everything
closes in reverse order.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from regfed.api.access import AccessInterceptor
from regfed.api.auth import LOOPBACK_OPERATOR, Authenticator, CertificateBook, TokenBook, token_hash
from regfed.api.codec import add_certificate_service
from regfed.api.limits import CallLimits
from regfed.api.observe import ObserveInterceptor, lookup_observer
from regfed.api.servicer import CertificateServicer
from regfed.api.tls import TlsFiles
from regfed.breaker import CircuitBreaker
from regfed.config import Settings, is_loopback
from regfed.errors import ConfigError
from regfed.federation.fanout import Federation, Upstream
from regfed.hcert.signer import HcertSigner
from regfed.keystore.secretfile import read_secret
from regfed.keystore.signing import generate_signing_key, load_certificates, load_signing_keys
from regfed.keystore.trustdir import PartnerTrust
from regfed.postgres.bounded import BoundedPool
from regfed.postgres.embedded import CITY_DB, FEDERAL_DB, STORE_DB, EmbeddedPostgres
from regfed.postgres.pool import close_pool, create_pool
from regfed.postgres.tasks import cancel_and_wait
from regfed.registries.city import CityRegistry
from regfed.registries.federal import FederalRegistry
from regfed.service.applications import ApplicationService, Schedule
from regfed.service.issuing import IssueService
from regfed.service.personkey import PersonKeyer
from regfed.service.ports import Clock, utc_now
from regfed.service.reconciler import Reconciler
from regfed.service.revoking import RevocationService
from regfed.service.sealing import KEY_BYTES, Sealer
from regfed.service.stats import StatsService
from regfed.service.trustlist import TrustListService
from regfed.service.verifying import VerifyService
from regfed.store.applications import ApplicationStore
from regfed.store.audit import RefusalTrail
from regfed.store.certificates import CertificateStore
from regfed.store.monitor import StoreMonitor
from regfed.store.revocations import RevocationCache
from regfed.store.tally import DenialTally
from regfed.v1 import certificate_service_pb2 as pb

if TYPE_CHECKING:  # imported at start only when metrics are on (see start())
    from regfed.metrics import Tally

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["CertificateService"].full_name

# Seconds a pool gets to close gracefully at shutdown before its connections are
# terminated (a dead link never says goodbye).
POOL_CLOSE_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Databases:
    """Where the three databases are."""

    store: str
    city: str
    federal: str
    demo: bool  # the registries are the embedded demo ones


async def open_databases(settings: Settings, stack: AsyncExitStack) -> Databases:
    """The configured DSNs; any left unset is a database of the embedded PostgreSQL."""
    store, city, federal = settings.store_dsn, settings.city_dsn, settings.federal_dsn
    if store and city and federal:
        return Databases(store, city, federal, demo=False)
    embedded = EmbeddedPostgres(settings.home)
    server_dsn = await asyncio.to_thread(embedded.start)
    stack.callback(embedded.stop)
    dsns = await embedded.ensure_databases(server_dsn, STORE_DB, CITY_DB, FEDERAL_DB)
    return Databases(
        store=store or dsns[STORE_DB],
        city=city or dsns[CITY_DB],
        federal=federal or dsns[FEDERAL_DB],
        demo=city is None and federal is None,
    )


def load_person_keyer(settings: Settings) -> PersonKeyer:
    """The HMAC secret that keys people; the development default creates one."""
    secret = read_secret(
        settings.person_key_path,
        setting="person_key_file",
        create=settings.person_key_file is None,
    )
    return PersonKeyer(bytes.fromhex(secret))


def load_application_sealer(settings: Settings) -> Sealer:
    """The key sealing applications' personal data. The embedded demo creates one; with all
    three DSNs set (production) it must be configured: a key made up on the spot would
    leave the open applications unreadable after the next start elsewhere."""
    if settings.application_key_file is None and not settings.embedded:
        raise ConfigError(
            "application_key_file: must be set when the store, city and federal DSNs are"
        )
    secret = read_secret(
        settings.application_key_path,
        setting="application_key_file",
        create=settings.application_key_file is None,
    )
    if len(secret) != 2 * KEY_BYTES:
        raise ConfigError(
            f"application_key_file: {settings.application_key_path} must hold exactly "
            f"{KEY_BYTES} bytes ({2 * KEY_BYTES} hex digits)"
        )
    return Sealer(bytes.fromhex(secret))


def application_schedule(settings: Settings) -> Schedule:
    """When pending applications are checked, from the settings."""
    return Schedule(
        interval=timedelta(seconds=settings.reconcile_interval),
        max_backoff=timedelta(seconds=settings.reconcile_max_backoff),
        ttl=timedelta(days=settings.application_ttl_days),
    )


def load_operator_token(settings: Settings) -> str:
    """The operators' bearer token; the development default creates one."""
    return read_secret(
        settings.operator_token_path,
        setting="operator_token_file",
        create=settings.operator_token_file is None,
    )


def check_transport(settings: Settings) -> None:
    """Plaintext only on loopback, unless the operator insists (``--insecure``)."""
    if not settings.tls and not settings.insecure and not is_loopback(settings.listen):
        raise ConfigError(
            f"listen: {settings.listen} is not a loopback address and no TLS certificate is "
            "set: set tls_cert_file and tls_key_file (REGFED_TLS_CERT_FILE, "
            "REGFED_TLS_KEY_FILE), or pass --insecure to serve plaintext anyway"
        )


def build_authenticator(
    settings: Settings, tls: TlsFiles | None, operator_token: str
) -> Authenticator | None:
    """How callers are known on the main listener; None: every caller is an operator,
    which only a loopback listener without an [auth] table allows (the demo)."""
    if tls is not None and tls.mutual:
        certificates = settings.auth.certificates if settings.auth is not None else {}
        if not certificates:
            log.warning("no [auth.certificates]: every client certificate maps to no role")
        return CertificateBook(certificates, tls)
    if settings.auth is not None:
        tokens = {role: list(hashes) for role, hashes in settings.auth.tokens.items()}
        # The operators' token file (regfed revoke reads it) is one more operator token.
        tokens.setdefault("operator", []).append(token_hash(operator_token))
        return TokenBook(tokens)
    if not is_loopback(settings.listen):
        raise ConfigError(
            f"auth: on {settings.listen} (beyond loopback) callers need credentials: set "
            "tls_client_ca_file with [auth.certificates], or [auth.tokens]"
        )
    return None


def load_signer(settings: Settings, clock: Clock) -> HcertSigner:
    """The signing keys; the development default creates one when the folder is empty."""
    folder = settings.signing_keys_dir
    keys = load_signing_keys(folder) if folder.exists() else []
    if not keys:
        if settings.keys_dir is not None:
            raise ConfigError(f"keys_dir: no signing key in {folder}")
        log.info("creating a development signing key in %s", folder)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        now = clock()
        generate_signing_key(folder, f"dev-{now:%Y%m%d}", now=now)
        keys = load_signing_keys(folder)
    return HcertSigner(
        keys,
        issuer_name=settings.issuer_name,
        issuer_country=settings.issuer_country,
        clock=clock,
    )


async def _report_unreachable(name: str, pool: BoundedPool) -> None:
    """Log one line if ``pool``'s database cannot be reached now (it also warms the pool)."""
    problem = await pool.unreachable()
    if problem is not None:
        log.warning(
            "%s unreachable at start-up (%s): answers degrade until it is back", name, problem
        )


class Application:
    """A running regfed: databases, pools, the gRPC server. ``start`` then ``stop``."""

    def __init__(
        self, settings: Settings, clock: Clock = utc_now, *, serve_metrics: bool = True
    ) -> None:
        """``serve_metrics``: False in ``--workers`` processes, whose supervisor serves
        ``/metrics`` for them all (they still collect when ``metrics_listen`` is set)."""
        self.settings = settings
        self.clock = clock
        self.port = 0
        self.health_port = 0
        self.metrics_port = 0
        self.databases: Databases | None = None
        self.tls: TlsFiles | None = None
        # Per-process state, for logs and metrics: the breakers by dependency, the cap.
        self.breakers: dict[str, CircuitBreaker] = {}
        self.limits = CallLimits(
            max_in_flight=settings.max_concurrent_rpcs,
            default_deadline=settings.default_deadline,
        )
        self.reconciler: Reconciler | None = None
        self._stack = AsyncExitStack()
        self._server: grpc.aio.Server | None = None
        self._health_server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None
        self._collect_metrics = settings.metrics_listen is not None
        self._serve_metrics = serve_metrics and self._collect_metrics
        self._authenticator: Authenticator | None = None
        self._refusals: RefusalTrail | None = None
        self._tally: Tally | None = None  # the per-call metrics, when metrics are on

    def _breaker(self, name: str) -> CircuitBreaker:
        breaker = CircuitBreaker(
            name,
            failures=self.settings.breaker_failures,
            reset_after=self.settings.breaker_reset,
        )
        self.breakers[name] = breaker
        return breaker

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background until it ends or the application stops."""
        task = asyncio.create_task(work)
        self._stack.push_async_callback(cancel_and_wait, task)

    async def _pool(self, dsn: str, size: int, bound: float, **kwargs: object) -> BoundedPool:
        """A pool that connects only when first used, each statement within ``bound``
        seconds, closed with the application."""
        pool = await create_pool(dsn, size, connect_timeout=bound, **kwargs)
        self._stack.push_async_callback(close_pool, pool, POOL_CLOSE_TIMEOUT)
        return BoundedPool(pool, timeout=bound)

    async def start(self, *, seed_demo: bool = True) -> None:
        """Open everything in order and start serving."""
        settings = self.settings
        check_transport(settings)
        self.tls = TlsFiles(settings) if settings.tls else None
        # Secrets first: a missing or unreadable key stops the start before anything opens.
        signer = load_signer(settings, self.clock)
        keyer = load_person_keyer(settings)
        self._authenticator = build_authenticator(settings, self.tls, load_operator_token(settings))
        sealer = load_application_sealer(settings)
        metrics: ModuleType | None = None
        if self._collect_metrics:
            # Imported only now: prometheus-client reads PROMETHEUS_MULTIPROC_DIR on import.
            metrics = importlib.import_module("regfed.metrics")
        try:
            if metrics is not None and settings.observe_calls:
                self._tally = metrics.Tally()
                await self._tally.start()
                self._stack.push_async_callback(self._tally.stop)
            self.databases = dbs = await open_databases(settings, self._stack)
            if dbs.demo and seed_demo:
                from regfed.demo.seed import seed_demo as seed

                await seed(dbs.city, dbs.federal, self.clock())
            store_pool = await self._pool(
                dbs.store, settings.store_pool_size, settings.store_timeout
            )
            # Registries are read-only to us: the session refuses writes, whatever a bug tries.
            read_only = {"server_settings": {"default_transaction_read_only": "on"}}
            timeout = settings.registry_timeout
            city_pool = await self._pool(
                dbs.city, settings.registry_pool_size, timeout, **read_only
            )
            federal_pool = await self._pool(
                dbs.federal, settings.registry_pool_size, timeout, **read_only
            )

            # One line per registry that cannot be reached now (its calls will degrade);
            # in the background, so a black-holed registry does not hold the start up.
            for name, pool in (("city", city_pool), ("federal", federal_pool)):
                self._background(_report_unreachable(f"{name} registry", pool))

            vaccines = settings.policy.vaccines
            federation = Federation(
                [
                    Upstream(
                        CityRegistry(city_pool, vaccines),
                        timeout,
                        leads=True,
                        breaker=self._breaker("city registry"),
                    ),
                    Upstream(
                        FederalRegistry(federal_pool, vaccines),
                        timeout,
                        breaker=self._breaker("federal registry"),
                    ),
                ],
                observer=(
                    lookup_observer(self._tally.lookups if self._tally else None)
                    if settings.observe_calls
                    else None
                ),
            )
            store_breaker = self._breaker("store")
            if metrics is not None:
                for name, breaker in self.breakers.items():
                    metrics.breaker_changed(name, breaker.state)
                    breaker.subscribe(functools.partial(metrics.breaker_changed, name))
            store = CertificateStore(
                store_pool,
                breaker=store_breaker,
                on_recorded=metrics.certificate_recorded if metrics else None,
            )
            # The monitor migrates the store on its first check and publishes the service's
            # health from then on; start-up waits for that first check, within a bound.
            monitor = StoreMonitor(
                store_pool,
                store_breaker,
                self._publish_health,
                interval=settings.health_interval,
            )
            await monitor.start(wait=settings.store_timeout)
            self._stack.push_async_callback(monitor.stop)
            if self._authenticator is not None:
                self._refusals = RefusalTrail(
                    store_pool, on_dropped=metrics.audit_dropped.inc if metrics else None
                )
                await self._refusals.start()
                self._stack.push_async_callback(self._refusals.stop)
            denials = DenialTally(store, on_denial=metrics.denial_counted if metrics else None)
            await denials.start()
            self._stack.push_async_callback(denials.stop)
            revocations = RevocationCache(store, dbs.store, connect_timeout=settings.store_timeout)
            await revocations.start()
            self._stack.push_async_callback(revocations.stop)
            # Every certificate in the keys folder, with or without its key: a retired key's
            # certificate stays there while codes it signed may still be valid.
            trust = PartnerTrust(
                load_certificates(settings.signing_keys_dir), settings.partner_trust_dir
            )
            clock = self.clock
            issuance = IssueService(
                federation=federation,
                policy=settings.policy,
                store=store,
                denials=denials,
                signer=signer,
                keyer=keyer,
                clock=clock,
            )
            application_store = ApplicationStore(store_pool)
            applications = ApplicationService(
                issuing=issuance,
                store=application_store,
                sealer=sealer,
                keyer=keyer,
                signer=signer,
                schedule=application_schedule(settings),
                clock=clock,
            )
            servicer = CertificateServicer(
                issuance=issuance,
                applications=applications,
                verification=VerifyService(
                    trust,
                    revocations,
                    clock=clock,
                    clock_skew=timedelta(seconds=settings.clock_skew),
                ),
                trust_list=TrustListService(trust, store, clock=clock),
                revocation=RevocationService(store, revocations, clock=clock),
                stats=StatsService(store, application_store),
                clock=clock,
            )
            # Stopped (cancelled) before the pools close: the stack unwinds in reverse.
            self.reconciler = Reconciler(
                applications,
                application_store,
                interval=settings.reconcile_interval,
                concurrency=settings.reconcile_concurrency,
                rate=settings.reconcile_rate,
                postpone=timedelta(seconds=settings.reconcile_max_backoff),
                clock=clock,
                on_counts=metrics.applications_counted if metrics is not None else None,
                call_rate=self.limits.call_rate,
            )
            await self.reconciler.start()
            self._stack.push_async_callback(self.reconciler.stop)
            await self._serve(servicer, serving=monitor.serving)
        except BaseException:
            await self._stack.aclose()
            raise

    def _interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """Outermost first: observe (request id, log line, metrics: it sees every answer,
        refusals and overload included), then the cap on calls in flight (health passes),
        then access (who calls, and may they)."""
        interceptors: list[grpc.aio.ServerInterceptor] = []
        if self.settings.observe_calls:
            open_caller = LOOPBACK_OPERATOR if self._authenticator is None else None
            interceptors.append(
                ObserveInterceptor(
                    self._tally.call if self._tally else None,
                    role=open_caller.role if open_caller else "-",
                    caller=open_caller.identity if open_caller else "-",
                )
            )
        interceptors.append(self.limits)
        if self._authenticator is not None:
            interceptors.append(
                AccessInterceptor(self._authenticator, self._refusals, clock=self.clock)
            )
        return interceptors

    def build_server(
        self, servicer: CertificateServicer, interceptors: list[grpc.aio.ServerInterceptor]
    ) -> grpc.aio.Server:
        """The main server: regfed.v1, health, reflection, behind ``interceptors``, on the
        configured listener (TLS when a certificate is set)."""
        settings = self.settings
        # grpc turns SO_REUSEPORT on by default: then a second server on the same address
        # would start without error and silently share the port.
        options: list[tuple[str, int]] = [("grpc.so_reuseport", 1 if settings.reuse_port else 0)]
        if settings.max_connection_age > 0:
            options += [
                ("grpc.max_connection_age_ms", round(settings.max_connection_age * 1000)),
                ("grpc.max_connection_age_grace_ms", round(settings.grace * 1000)),
            ]
        server = grpc.aio.server(interceptors=interceptors, options=options)
        add_certificate_service(servicer, server)
        assert self._health is not None
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        listen = self.settings.listen
        try:
            if self.tls is not None:
                self.port = server.add_secure_port(listen, self.tls.credentials())
            else:
                self.port = server.add_insecure_port(listen)
        except RuntimeError:  # grpcio raises on a failed bind (older versions returned 0)
            self.port = 0
        if self.port == 0:
            raise ConfigError(f"listen: cannot bind {listen} (already in use?)")
        return server

    def _build_health_server(self, listen: str) -> grpc.aio.Server:
        """Plaintext, grpc.health.v1 only (Kubernetes' gRPC probes speak no TLS), sharing
        the main server's health state."""
        server = grpc.aio.server(
            options=[("grpc.so_reuseport", 1 if self.settings.reuse_port else 0)]
        )
        assert self._health is not None
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        try:
            self.health_port = server.add_insecure_port(listen)
        except RuntimeError:
            self.health_port = 0
        if self.health_port == 0:
            raise ConfigError(f"health_listen: cannot bind {listen} (already in use?)")
        return server

    async def _serve(self, servicer: CertificateServicer, *, serving: bool) -> None:
        self._health = health.aio.HealthServicer()
        server = self.build_server(servicer, self._interceptors())
        # Health before the first call can arrive: the process serves; the service only
        # when the store is ready (the monitor keeps it current from now on).
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self._publish_health(serving)
        await server.start()
        self._server = server
        if self.settings.health_listen is not None:
            self._health_server = self._build_health_server(self.settings.health_listen)
            await self._health_server.start()
        if self._serve_metrics and self.settings.metrics_listen is not None:
            from regfed.metrics import Endpoint

            endpoint = Endpoint(self.settings.metrics_listen)
            self._stack.callback(endpoint.close)
            self.metrics_port = endpoint.port
        host = self.settings.listen.rpartition(":")[0]
        log.info(
            "serving regfed.v1 on %s:%d (%s, %s)",
            host,
            self.port,
            "mutual TLS" if self.tls and self.tls.mutual else "TLS" if self.tls else "plaintext",
            "SERVING" if serving else "NOT_SERVING until the store answers",
        )

    async def _publish_health(self, serving: bool) -> None:
        """The service's health: SERVING while the store is reachable. (After SIGTERM the
        health servicer ignores this: it stays NOT_SERVING.)"""
        if self._health is None:
            return  # not serving yet: _serve publishes the state it starts with
        response = health_pb2.HealthCheckResponse
        await self._health.set(SERVICE_NAME, response.SERVING if serving else response.NOT_SERVING)

    async def wait(self) -> None:
        """Until the server stops."""
        if self._server is not None:
            await self._server.wait_for_termination()

    async def stop(self) -> None:
        """NOT_SERVING at once; keep taking calls for ``drain_delay`` (load balancers see
        the health and stop sending); then stop accepting and give in-flight calls
        ``grace`` to finish; then close everything in reverse order."""
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        if self._server is not None:
            if self.settings.drain_delay:
                log.info("draining: new calls still taken for %.1f s", self.settings.drain_delay)
                await asyncio.sleep(self.settings.drain_delay)
            self.limits.stopping()
            in_flight = self.limits.in_flight
            await self._server.stop(self.settings.grace)
            self._server = None
            log.info(
                "stopped: %d calls were in flight, %d cut off by the %.1f s grace",
                in_flight,
                self.limits.cut_off,
                self.settings.grace,
            )
        if self._health_server is not None:
            await self._health_server.stop(0)
            self._health_server = None
        await self._stack.aclose()
