"""A running regfed for API tests: fresh databases with the demo people, a signing key,
the real composition root, a real grpc.aio server on a loopback port."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from regfed.app import Application
from regfed.config import Settings
from regfed.demo.people import DemoPerson
from regfed.demo.schema import registry_ddl
from regfed.demo.seed import seed_demo
from regfed.keystore.signing import generate_signing_key
from regfed.v1 import certificate_service_pb2 as pb
from tests.conftest import CreateDatabase


def application_key(home: Path) -> Path:
    """A fresh application key file in ``home`` (mode 0600), as an operator provisions it."""
    path = home / "application.key"
    path.write_text(secrets.token_hex(32), encoding="ascii")
    path.chmod(0o600)
    return path


async def demo_settings(create_database: CreateDatabase, home: Path) -> Settings:
    """Settings for a server over fresh, seeded databases, with a key in ``home/keys`` and
    an application key in ``home`` (all three DSNs are set: as in production, the key must
    be configured)."""
    keys = home / "keys"
    keys.mkdir(mode=0o700)
    generate_signing_key(keys, "test-signer")
    city = await create_database(registry_ddl("city"))
    federal = await create_database(registry_ddl("federal"))
    store = await create_database()
    await seed_demo(city, federal, datetime.now(UTC))
    return Settings(
        listen="127.0.0.1:0",
        store_dsn=store,
        city_dsn=city,
        federal_dsn=federal,
        home=home,
        keys_dir=keys,
        application_key_file=application_key(home),
        grace=0.5,
        drain_delay=0,  # nothing balances load in front of a test server
    )


@asynccontextmanager
async def running(settings: Settings, **changes: Any) -> AsyncIterator[Application]:
    """The application started with ``settings`` (and ``changes``), stopped on exit."""
    application = Application(settings.with_changes(**changes))
    await application.start()
    try:
        yield application
    finally:
        await application.stop()


@asynccontextmanager
async def channel_to(app: Application) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to the running server."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as chan:
        yield chan


def person_message(person: DemoPerson) -> pb.Person:
    """The Person message a portal would send for a demo person."""
    return pb.Person(
        last_name=person.last_name,
        first_name=person.first_name,
        middle_name=person.middle_name,
        birth_date=person.birth_date.isoformat(),
        snils=person.snils or "",
        oms_policy=person.oms_policy or "",
        passport=person.passport or "",
    )
