"""``regfed applications …``, ``regfed demo arrive`` and ``regfed stats`` as an operator
runs them: the README's story against a real server whose reconciler runs fast."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import pytest
from click.testing import Result

from regfed.app import Application
from regfed.demo.people import late_person
from tests.conftest import CreateDatabase
from tests.integration.harness import demo_settings, running
from tests.integration.test_cli_client import regfed

pytestmark = pytest.mark.postgres

LATE = late_person("Зайцев")
PERSON = (
    "--last-name", LATE.last_name, "--first-name", LATE.first_name,
    "--birth-date", LATE.birth_date.isoformat(), "--snils", LATE.snils or "",
)  # fmt: skip
ID = re.compile(r"application ([0-9a-f-]{36})")


@pytest.fixture
async def app(
    create_database: CreateDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Application]:
    """A running regfed over fresh databases, reconciling every 0.2 s."""
    settings = await demo_settings(create_database, tmp_path_factory.mktemp("regfed-home"))
    async with running(settings, reconcile_interval=0.2, reconcile_max_backoff=0.2) as started:
        yield started


async def until_issued(app: Application, application_id: str) -> Result:
    """``regfed applications show ID`` until it exits 0 (ISSUED): every 0.1 s, 30 s at most."""
    for _ in range(300):
        shown = await regfed(app, "applications", "show", application_id)
        if shown.exit_code == 0:
            return shown
        assert shown.exit_code == 1, shown.stderr
        await asyncio.sleep(0.1)
    raise AssertionError("still not issued after 30 s")


async def test_the_readme_story_on_the_command_line(app: Application) -> None:
    """submit → PENDING (exit 1); demo arrive; show → ISSUED (exit 0) with a code that
    verify says is VALID; stats counts it; list shows it, with no personal data."""
    submitted = await regfed(
        app, "applications", "submit", *PERSON, "--contact", "zaitsev@example.org",
        "--category", "vaccination-not-found",
    )  # fmt: skip
    assert submitted.exit_code == 1, submitted.stderr
    assert submitted.stdout.startswith("PENDING: application ")
    assert "last denial: NOT_FOUND" in submitted.stdout
    found = ID.search(submitted.stdout)
    assert found is not None
    application_id = found[1]

    arrived = await regfed(
        app, "demo", "arrive", "зайцев", "--federal-dsn", str(app.settings.federal_dsn)
    )
    assert arrived.exit_code == 0, arrived.output
    shown = await until_issued(app, application_id)
    assert "ISSUED: VACCINATION certificate" in shown.stdout
    (code,) = re.findall(r"^HC1:.+$", shown.stdout, flags=re.MULTILINE)
    verified = await regfed(app, "verify", code)
    assert verified.exit_code == 0
    assert verified.stdout.startswith("VALID")

    as_json = json.loads(
        (await regfed(app, "applications", "show", application_id, "--json")).stdout
    )
    assert as_json["status"] == "APPLICATION_STATUS_ISSUED"
    assert as_json["certificate"]["qrPayload"] == code

    stats = await regfed(app, "stats")
    assert stats.exit_code == 0
    assert "  ISSUED: 1" in stats.stdout
    assert "  VACCINATION_NOT_FOUND / ISSUED: 1" in stats.stdout
    assert "Median time from application to code:" in stats.stdout
    stats_json = json.loads((await regfed(app, "stats", "--json")).stdout)
    assert stats_json["applicationsWithCode"] == "1"

    store = str(app.settings.store_dsn)
    listed = await regfed(app, "applications", "list", "--store-dsn", store, "--status", "issued")
    assert listed.exit_code == 0
    assert application_id in listed.stdout
    assert LATE.last_name not in listed.stdout
    assert str(LATE.snils) not in listed.stdout
    listed_json = json.loads(
        (await regfed(app, "applications", "list", "--store-dsn", store, "--json")).stdout
    )
    assert [a["applicationId"] for a in listed_json["applications"]] == [application_id]
    pending = await regfed(app, "applications", "list", "--store-dsn", store, "--status", "pending")
    assert pending.stdout == ""


async def test_bad_submissions_exit_2_naming_the_field(app: Application) -> None:
    """The server's field violations reach stderr, with exit status 2."""
    result = await regfed(app, "applications", "submit", *PERSON, "--contact", "nobody")
    assert result.exit_code == 2
    assert "contact: must be an e-mail address or a phone number" in result.stderr
    unknown = await regfed(app, "applications", "show", "00000000-0000-4000-8000-000000000000")
    assert unknown.exit_code == 3
    assert "NOT_FOUND" in unknown.stderr
