"""The Kubernetes manifests agree with the service: shutdown timings add up, secrets are
mounted owner-only, the pods run restricted, and the configuration files load.
(`make deploy-check` renders the production overlay and validates it against Kubernetes'
schemas; these are the rules the schemas cannot know.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from regfed.config import load_settings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


@pytest.fixture(scope="module")
def pod() -> dict[str, Any]:
    """The base Deployment's pod spec."""
    deployment = yaml.safe_load((K8S / "base" / "deployment.yaml").read_text(encoding="utf-8"))
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def _server(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in pod["containers"] if c["name"] == "regfed"]
    assert isinstance(container, dict)
    return container


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def test_the_drain_delay_and_grace_fit_the_termination_grace_period(pod: dict[str, Any]) -> None:
    """preStop's delay (while endpoints drop the pod) plus REGFED_GRACE (in-flight calls
    after SIGTERM) leave a margin before Kubernetes kills the process."""
    server = _server(pod)
    command = server["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    drain = float(command[1])
    grace = float(_env(server)["REGFED_GRACE"])
    assert drain >= 3
    assert drain + grace + 5 <= pod["terminationGracePeriodSeconds"]


def test_probes_are_grpc_on_the_plaintext_health_listener(pod: dict[str, Any]) -> None:
    """Liveness, readiness and start-up use native gRPC probes on REGFED_HEALTH_LISTEN's
    port; readiness asks for CertificateService, which turns NOT_SERVING on SIGTERM."""
    server = _server(pod)
    port = int(_env(server)["REGFED_HEALTH_LISTEN"].rsplit(":", 1)[1])
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert server[probe]["grpc"]["port"] == port
    assert server["readinessProbe"]["grpc"]["service"] == "regfed.v1.CertificateService"


def test_secrets_are_mounted_owner_only_and_never_in_the_image_or_variables(
    pod: dict[str, Any],
) -> None:
    """Every Secret volume has mode 0400, and the files regfed reads them from are on
    volumes (not the image)."""
    secrets = [v for v in pod["volumes"] if "secret" in v]
    assert {v["secret"]["secretName"] for v in secrets} >= {
        "regfed-signing-keys",
        "regfed-person-key",
        "regfed-tls",
    }
    for volume in secrets:
        assert volume["secret"]["defaultMode"] == 0o400, volume["name"]
    mounts = [m["mountPath"] for m in _server(pod)["volumeMounts"]]
    env = _env(_server(pod))
    for name in ("REGFED_KEYS_DIR", "REGFED_PERSON_KEY_FILE", "REGFED_TLS_KEY_FILE"):
        assert any(env[name].startswith(path + "/") or env[name] == path for path in mounts)


def test_every_container_runs_restricted(pod: dict[str, Any]) -> None:
    """Non-root with a fixed UID, no privilege escalation, no capabilities, a read-only
    root filesystem, RuntimeDefault seccomp, and resource requests and limits."""
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for container in pod["initContainers"] + pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        assert set(container["resources"]) == {"requests", "limits"}


@pytest.mark.parametrize("path", ["base/regfed.toml", "overlays/production/regfed.toml"])
def test_the_configuration_files_load(path: str) -> None:
    """The ConfigMaps' TOML files are configuration regfed accepts."""
    settings = load_settings(K8S / path, env={})
    assert settings.issuer_name
