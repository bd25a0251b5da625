"""The container image, checked without Docker (no daemon runs on the development machines or
in CI): the Dockerfile's stages, the final stage's base, user and entry point, and what
the final stage installs. hadolint (`make deploy-check`) lints the rest."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FINAL_BASE = re.compile(r"python:3\.11(\.\d+)?-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?")


@dataclass
class Stage:
    """One FROM and the instructions under it."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        """The arguments of every ``keyword`` instruction in the stage."""
        return [args for kw, args in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        """The stage's ENV settings (``KEY=value`` form)."""
        settings: dict[str, str] = {}
        for args in self.all("ENV"):
            for word in shlex.split(args):
                key, _, value = word.partition("=")
                settings[key] = value
        return settings


def _logical_lines(text: str) -> list[str]:
    """Instructions with their continuation lines joined; comment lines dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return lines


def parse(text: str) -> list[Stage]:
    """The stages, with global ARG defaults substituted into each FROM."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest).split()
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=alias))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, rest))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    """The repository's Dockerfile, parsed."""
    return parse((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def test_a_build_stage_makes_the_wheel_the_final_stage_installs(stages: list[Stage]) -> None:
    """Multi-stage: a build stage runs `python -m build`; the final stage takes only the
    wheel from it."""
    assert len(stages) >= 2
    build = stages[0]
    assert build.name == "build"
    assert any("python -m build" in run for run in build.all("RUN"))
    final = stages[-1]
    assert final.name != "build"
    copied = [c for c in final.all("COPY") if c.startswith("--from=")]
    assert copied
    assert all(c.startswith("--from=build ") for c in copied)


def test_the_final_stage_is_slim_python_3_11(stages: list[Stage]) -> None:
    """The final stage's base is the slim Python 3.11 image."""
    assert FINAL_BASE.fullmatch(stages[-1].base), stages[-1].base


def test_the_final_stage_runs_as_a_fixed_non_root_user(stages: list[Stage]) -> None:
    """USER is a numeric, non-zero UID (so Kubernetes' runAsNonRoot can check it), created
    in the final stage with that UID, and the last USER before the entry point."""
    final = stages[-1]
    users = final.all("USER")
    assert users
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid == "" or (gid.isdigit() and int(gid) != 0)
    assert any(f"--uid {uid}" in run for run in final.all("RUN"))
    keywords = [kw for kw, _ in final.instructions]
    assert keywords.index("ENTRYPOINT") > len(keywords) - 1 - keywords[::-1].index("USER")


def test_the_entry_point_is_regfed_serve_without_insecure(stages: list[Stage]) -> None:
    """`regfed` is the entry point and `serve` the default command, in exec form; plaintext
    is never the default (`--insecure` must be given explicitly)."""
    final = stages[-1]
    (entrypoint,) = final.all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["regfed"]
    (cmd,) = final.all("CMD")
    command = json.loads(cmd)
    assert command[0] == "serve"
    assert "--insecure" not in command


def test_the_image_listens_everywhere_with_tls_from_mounted_files(stages: list[Stage]) -> None:
    """0.0.0.0 only together with the TLS certificate and key (mounted files), health and
    metrics on listeners of their own."""
    env = stages[-1].env()
    assert env["REGFED_LISTEN"].startswith("0.0.0.0:")
    assert env["REGFED_TLS_CERT_FILE"].startswith("/run/")
    assert env["REGFED_TLS_KEY_FILE"].startswith("/run/")
    assert env["REGFED_HEALTH_LISTEN"]
    assert env["REGFED_METRICS_LISTEN"]


def test_the_final_stage_installs_the_wheel_alone(stages: list[Stage]) -> None:
    """No build tools (compiler, grpcio-tools, build) and no extras (demo, cli) in the final
    stage: it installs the wheel with its runtime dependencies, nothing else."""
    runs = " ".join(stages[-1].all("RUN"))
    installs = re.findall(r"pip install ([^&;]+)", runs)
    assert installs
    for install in installs:
        packages = [w for w in install.split() if not w.startswith("-") and "constraints" not in w]
        assert len(packages) == 1, install
        assert packages[0].endswith("/regfed-*.whl"), install  # no [extra] after it
    for tool in ("apt-get", "gcc", "grpcio-tools", "mypy-protobuf", "pgserver", "zxing"):
        assert tool not in runs


def test_the_build_context_leaves_local_state_out() -> None:
    """The context is an allow-list: development keys, the embedded database, the
    virtualenv and generated code never reach an image."""
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    allowed = {rule[1:] for rule in rules if rule.startswith("!")}
    assert not {".regfed", ".regfed/", ".venv", ".venv/", ".git"} & allowed
    assert "src/regfed/v1/*_pb2*" in rules
