"""Bearer tokens on a TLS listener without a client CA: known by their SHA-256 in
``[auth.tokens]``; the operators' token file is one more operator token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from regfed.api.auth import token_hash
from regfed.app import Application
from regfed.config import AuthFile
from regfed.keystore.secretfile import read_secret
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from tests.conftest import CreateDatabase
from tests.integration.harness import demo_settings, running
from tests.pki import CertificateAuthority

pytestmark = pytest.mark.postgres

PORTAL_TOKEN = "portal-token-for-tests-" + "7" * 20
REVOKE = pb.RevokeRequest(uvci="URN:UVCI:01:RU:NOSUCHONE", reason="test")


@pytest.fixture(scope="module")
async def served(
    create_database: CreateDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Application, bytes]]:
    """regfed on TLS, no client CA, a portal token configured; and the CA to trust."""
    home = tmp_path_factory.mktemp("regfed-home")
    ca = CertificateAuthority()
    cert, key = ca.server().write(home / "tls", "server")
    settings = (await demo_settings(create_database, home)).with_changes(
        tls_cert_file=cert,
        tls_key_file=key,
        auth=AuthFile(tokens={"portal": [token_hash(PORTAL_TOKEN)]}),
    )
    async with running(settings) as application:
        yield application, ca.pem


async def revoke_status(served: tuple[Application, bytes], metadata: Any) -> grpc.StatusCode:
    app, ca = served
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    async with grpc.aio.secure_channel(f"127.0.0.1:{app.port}", credentials) as channel:
        try:
            await pb_grpc.CertificateServiceStub(channel).Revoke(
                REVOKE, metadata=metadata, timeout=10
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", "Bearer not-a-known-token"),), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", f"Basic {PORTAL_TOKEN}"),), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", f"Bearer {PORTAL_TOKEN}"),), grpc.StatusCode.PERMISSION_DENIED),
    ],
)
async def test_missing_or_unknown_token_is_unauthenticated_a_portal_one_denied(
    served: tuple[Application, bytes], metadata: Any, code: grpc.StatusCode
) -> None:
    """No token or an unknown one: UNAUTHENTICATED; the portal's token: PERMISSION_DENIED."""
    assert await revoke_status(served, metadata) == code


async def test_operator_token_file_is_an_operator_token(
    served: tuple[Application, bytes],
) -> None:
    """REGFED_OPERATOR_TOKEN_FILE's token may revoke (NOT_FOUND: the UVCI is unknown)."""
    app, _ = served
    token = read_secret(app.settings.operator_token_path, setting="test", create=False)
    metadata = (("authorization", f"Bearer {token}"),)
    assert await revoke_status(served, metadata) == grpc.StatusCode.NOT_FOUND
