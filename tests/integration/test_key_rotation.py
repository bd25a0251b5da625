"""Key rotation: the newest valid key signs; older keys keep verifying what they signed."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from regfed.demo.people import DEMO_PEOPLE
from regfed.hcert.keys import kid_of
from regfed.hcert.signer import HcertSigner
from regfed.keystore.signing import generate_signing_key, load_signing_keys
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from tests.conftest import CreateDatabase
from tests.hc1_reference import partner_hcert
from tests.integration.harness import channel_to, demo_settings, person_message, running

pytestmark = pytest.mark.postgres


async def test_newest_key_signs_and_the_older_one_still_verifies(
    create_database: CreateDatabase, tmp_path: Path
) -> None:
    """With an older and a newer key in the folder, Issue signs with the newer one, a code
    the older key signed still verifies, and the trust list carries both as our own, and
    a retired key's lone certificate too."""
    settings = await demo_settings(create_database, tmp_path)  # its key, "test-signer": now
    assert settings.keys_dir is not None
    now = datetime.now(UTC)
    older = generate_signing_key(settings.keys_dir, "older", now=now - timedelta(days=30))
    newest = next(k for k in load_signing_keys(settings.keys_dir) if k.name == "test-signer")
    # A retired key: its private key is gone, its certificate stays to verify old codes.
    retired = generate_signing_key(tmp_path / "retired", "retired", now=now - timedelta(days=60))
    (tmp_path / "retired" / "retired.crt.pem").rename(settings.keys_dir / "retired.crt.pem")
    old_code = HcertSigner([older], issuer_name="test").sign(
        partner_hcert("v", uvci="URN:UVCI:01:RU:SIGNEDBYOLDERKEY"),
        issued_at=now - timedelta(days=1),
        expires_at=now + timedelta(days=100),
    )
    async with running(settings) as app, channel_to(app) as channel:
        stub = pb_grpc.CertificateServiceStub(channel)
        trust = await stub.GetTrustList(pb.GetTrustListRequest(), timeout=10)
        own = {base64.b64decode(k.key_id) for k in trust.keys if k.own}
        assert {older.kid, newest.kid, retired.kid} <= own
        verdict = await stub.Verify(pb.VerifyRequest(qr_payload=old_code.text), timeout=10)
        assert verdict.verdict == pb.VERDICT_VALID, verdict.detail
        person = next(p for p in DEMO_PEOPLE if p.outcome == "VACCINATION")
        issued = await stub.Issue(pb.IssueRequest(person=person_message(person)), timeout=10)
        assert base64.b64decode(issued.certificate.key_id) == kid_of(newest.certificate)
