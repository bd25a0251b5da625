"""The composition root: settings -> databases, pools, adapters, signer, store -> server.

Everything is opened here, in order, and closed here, in reverse order. Nothing opens a
pool or reads the environment at import time.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from regfed.api.access import AccessInterceptor
from regfed.api.auth import LOOPBACK_OPERATOR, Authenticator, CertificateBook, TokenBook, token_hash
from regfed.api.observe import ObserveInterceptor, grpc_metrics, lookup_observer
from regfed.api.servicer import CertificateServicer
from regfed.api.tls import TlsFiles
from regfed.config import Settings, is_loopback
from regfed.errors import ConfigError
from regfed.federation.fanout import Federation, Upstream
from regfed.hcert.signer import HcertSigner
from regfed.keystore.secretfile import read_secret
from regfed.keystore.signing import generate_signing_key, load_certificates, load_signing_keys
from regfed.keystore.trustdir import PartnerTrust
from regfed.postgres.embedded import CITY_DB, FEDERAL_DB, STORE_DB, EmbeddedPostgres
from regfed.postgres.pool import create_pool
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
from regfed.store.migrate import migrate
from regfed.store.revocations import RevocationCache
from regfed.store.tally import DenialTally
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["CertificateService"].full_name


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
        self._stack = AsyncExitStack()
        self._server: grpc.aio.Server | None = None
        self._health_server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None
        self._collect_metrics = settings.metrics_listen is not None
        self._serve_metrics = serve_metrics and self._collect_metrics
        self._authenticator: Authenticator | None = None
        self._refusals: RefusalTrail | None = None
        self.reconciler: Reconciler | None = None

    async def start(self, *, seed_demo: bool = True) -> None:
        """Open everything in order and start serving."""
        settings = self.settings
        check_transport(settings)
        self.tls = TlsFiles(settings) if settings.tls else None
        # Secrets first: a missing or unreadable key stops the start before anything opens.
        signer = load_signer(settings, self.clock)
        keyer = load_person_keyer(settings)
        self._authenticator = build_authenticator(settings, self.tls, load_operator_token(settings))
        metrics: ModuleType | None = None
        if self._collect_metrics:
            # Imported only now: prometheus-client reads PROMETHEUS_MULTIPROC_DIR on import.
            metrics = importlib.import_module("regfed.metrics")
        sealer = load_application_sealer(settings)
        try:
            self.databases = dbs = await open_databases(settings, self._stack)
            if dbs.demo and seed_demo:
                from regfed.demo.seed import seed_demo as seed

                await seed(dbs.city, dbs.federal, self.clock())
            store_pool = await create_pool(dbs.store, settings.store_pool_size)
            self._stack.push_async_callback(store_pool.close)
            async with store_pool.acquire() as conn:
                applied = await migrate(conn)
            if applied:
                log.info("store migrated: applied %s", applied)
            # Registries are read-only to us: the session refuses writes, whatever a bug tries.
            read_only = {"server_settings": {"default_transaction_read_only": "on"}}
            city_pool = await create_pool(dbs.city, settings.registry_pool_size, **read_only)
            self._stack.push_async_callback(city_pool.close)
            federal_pool = await create_pool(dbs.federal, settings.registry_pool_size, **read_only)
            self._stack.push_async_callback(federal_pool.close)

            vaccines = settings.policy.vaccines
            timeout = settings.registry_timeout
            federation = Federation(
                [
                    Upstream(CityRegistry(city_pool, vaccines), timeout, leads=True),
                    Upstream(FederalRegistry(federal_pool, vaccines), timeout),
                ],
                observer=lookup_observer(self._collect_metrics) if settings.observe_calls else None,
            )
            store = CertificateStore(
                store_pool, on_recorded=metrics.certificate_recorded if metrics else None
            )
            if self._authenticator is not None:
                self._refusals = RefusalTrail(
                    store_pool, on_dropped=metrics.audit_dropped.inc if metrics else None
                )
                await self._refusals.start()
                self._stack.push_async_callback(self._refusals.stop)
            denials = DenialTally(store, on_denial=metrics.denial_counted if metrics else None)
            await denials.start()
            self._stack.push_async_callback(denials.stop)
            revocations = RevocationCache(store, dbs.store)
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
            )
            await self.reconciler.start()
            self._stack.push_async_callback(self.reconciler.stop)
            await self._serve(servicer)
        except BaseException:
            await self._stack.aclose()
            raise

    def _interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """Outermost first: observe (request id, log line, metrics: it sees every answer,
        refusals included), then access (who calls, and may they)."""
        interceptors: list[grpc.aio.ServerInterceptor] = []
        if self.settings.observe_calls:
            open_caller = LOOPBACK_OPERATOR if self._authenticator is None else None
            interceptors.append(
                ObserveInterceptor(
                    grpc_metrics() if self._collect_metrics else None,
                    role=open_caller.role if open_caller else "-",
                    caller=open_caller.identity if open_caller else "-",
                )
            )
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
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[("grpc.so_reuseport", 1)],
            maximum_concurrent_rpcs=self.settings.max_concurrent_rpcs,
        )
        pb_grpc.add_CertificateServiceServicer_to_server(servicer, server)
        assert self._health is not None
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        listen = self.settings.listen
        if self.tls is not None:
            self.port = server.add_secure_port(listen, self.tls.credentials())
        else:
            self.port = server.add_insecure_port(listen)
        if self.port == 0:
            raise ConfigError(f"listen: cannot bind {listen}")
        return server

    def _build_health_server(self, listen: str) -> grpc.aio.Server:
        """Plaintext, grpc.health.v1 only (Kubernetes' gRPC probes speak no TLS), sharing
        the main server's health state."""
        server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
        assert self._health is not None
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self.health_port = server.add_insecure_port(listen)
        if self.health_port == 0:
            raise ConfigError(f"health_listen: cannot bind {listen}")
        return server

    async def _serve(self, servicer: CertificateServicer) -> None:
        self._health = health.aio.HealthServicer()
        server = self.build_server(servicer, self._interceptors())
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
        for name in ("", SERVICE_NAME):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "serving regfed.v1 on %s (%s)",
            self.settings.listen,
            "mutual TLS" if self.tls and self.tls.mutual else "TLS" if self.tls else "plaintext",
        )

    async def wait(self) -> None:
        """Until the server stops."""
        if self._server is not None:
            await self._server.wait_for_termination()

    async def stop(self) -> None:
        """Stop accepting calls, let in-flight ones finish, then close in reverse order."""
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(self.settings.grace)
            self._server = None
        if self._health_server is not None:
            await self._health_server.stop(0)
            self._health_server = None
        await self._stack.aclose()
