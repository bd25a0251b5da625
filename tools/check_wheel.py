"""Build the sdist and the wheel as a release would, check what they hold, then install the
wheel into a fresh virtualenv — no extras — and run it as an operator and a partner would.

``make wheel-check`` runs this with the development virtualenv's Python (it needs
``build``, and the dev tree's generated code to compare the wheel's against).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
PROTO = "regfed/v1/certificate_service.proto"
WHEEL_MUST_HOLD = [
    "regfed/__init__.py",
    "regfed/py.typed",
    "regfed/v1/__init__.py",
    "regfed/v1/certificate_service_pb2.py",
    "regfed/v1/certificate_service_pb2.pyi",
    "regfed/v1/certificate_service_pb2_grpc.py",
    "regfed/v1/certificate_service_pb2_grpc.pyi",
    f"regfed/protos/{PROTO}",
    "regfed/store/migrations/0001_certificates.sql",
]
SDIST_MUST_HOLD = ["LICENSE", "setup.py", "tools/protogen.py", "MANIFEST.in", f"protos/{PROTO}"]
DESCRIPTOR_DIGEST = (
    "import hashlib; from regfed.v1 import certificate_service_pb2 as pb; "
    "print(hashlib.sha256(pb.DESCRIPTOR.serialized_pb).hexdigest())"
)


class CheckFailed(Exception):
    """Something a release needs is missing or wrong."""


def run(*args: str | Path, cwd: Path | None = None, expect_ok: bool = True) -> str:
    """Run a command; its stdout (stderr echoed). Fails the check on an unexpected status."""
    shown = " ".join(str(a) for a in args)
    print(f"$ {shown}", flush=True)
    done = subprocess.run(  # noqa: S603 - our own commands, no shell
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if (done.returncode == 0) != expect_ok:
        sys.stderr.write(done.stdout + done.stderr)
        raise CheckFailed(f"{shown}: exit status {done.returncode}")
    return done.stdout + (done.stderr if not expect_ok else "")


def build() -> tuple[Path, Path]:
    """``python -m build``: the sdist, then the wheel built from it (as pip would)."""
    for old in DIST.glob("regfed-*"):
        old.unlink()
    run(sys.executable, "-m", "build", "--outdir", DIST, ROOT)
    (sdist,) = DIST.glob("regfed-*.tar.gz")
    (wheel,) = DIST.glob("regfed-*.whl")
    return sdist, wheel


def check_sdist(sdist: Path) -> None:
    """The sdist holds what the build hook needs, and no generated code."""
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    missing = [name for name in SDIST_MUST_HOLD if name not in names]
    generated = [name for name in names if "_pb2" in name or name.startswith("src/regfed/protos")]
    if missing or generated:
        raise CheckFailed(f"sdist: missing {missing}, generated files {generated}")


def check_wheel(wheel: Path) -> None:
    """The wheel holds the generated code, its stubs, the protos, py.typed and the licence."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        missing = [name for name in WHEEL_MUST_HOLD if name not in names]
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        info = archive.read(metadata).decode()
        licence = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        if f"regfed/protos/{PROTO}" in names:
            shipped = archive.read(f"regfed/protos/{PROTO}")
            if shipped != (ROOT / "protos" / PROTO).read_bytes():
                raise CheckFailed(f"wheel: regfed/protos/{PROTO} differs from protos/{PROTO}")
    if missing or not licence:
        raise CheckFailed(f"wheel: missing {missing}{'' if licence else ' and LICENSE'}")
    if "License-Expression: Apache-2.0" not in info:
        raise CheckFailed("wheel: METADATA declares no License-Expression: Apache-2.0")
    requires = [line for line in info.splitlines() if line.startswith("Requires-Dist:")]
    for package, extra in (("pgserver", "demo"), ("zxing-cpp", "cli")):
        lines = [line for line in requires if f" {package}" in line]
        if not lines or any(f'extra == "{extra}"' not in line for line in lines):
            raise CheckFailed(f"wheel: {package} must be required by the {extra} extra only")


def check_installed(wheel: Path, tmp: Path) -> None:
    """Install the wheel alone into a fresh virtualenv and run what users run."""
    run(sys.executable, "-m", "venv", tmp / "venv")
    bin_dir = tmp / "venv" / "bin"
    # The versions `make test` ran with: CI stays reproducible.
    run(bin_dir / "pip", "install", "--quiet", "-c", ROOT / "constraints.txt", wheel)
    print(run(bin_dir / "regfed", "--version", cwd=tmp).strip())
    run(bin_dir / "regfed", "--help", cwd=tmp)
    py = bin_dir / "python"
    run(py, "-c", "from regfed.v1 import certificate_service_pb2_grpc", cwd=tmp)

    # A production install carries no extra, and says which one a command needs.
    absent = "import importlib.util as u; assert not u.find_spec('pgserver'), 'pgserver'; "
    absent += "assert not u.find_spec('zxingcpp'), 'zxingcpp'"
    run(py, "-c", absent, cwd=tmp)
    home = f"REGFED_HOME={tmp / 'home'}"
    out = run("env", home, bin_dir / "regfed", "db", "migrate", cwd=tmp, expect_ok=False)
    if "pip install 'regfed[demo]'" not in out or "Traceback" in out:
        raise CheckFailed(f"regfed db migrate without pgserver: {out!r}")
    image = tmp / "code.png"
    image.write_bytes(b"not an image")
    out = run(bin_dir / "regfed", "verify", "--image", image, cwd=tmp, expect_ok=False)
    if "pip install 'regfed[cli]'" not in out or "Traceback" in out:
        raise CheckFailed(f"regfed verify --image without zxing-cpp: {out!r}")

    # The wheel's generated code (from the build's pinned generator) and the dev tree's
    # (`make proto`) describe the same contract.
    wheel_digest = run(py, "-c", DESCRIPTOR_DIGEST, cwd=tmp).strip()
    dev_digest = run(sys.executable, "-c", DESCRIPTOR_DIGEST, cwd=tmp).strip()
    if wheel_digest != dev_digest:
        raise CheckFailed("the wheel's descriptor differs from src/regfed/v1: run make proto")


def main() -> int:
    """Run every check; non-zero on the first failure."""
    try:
        sdist, wheel = build()
        check_sdist(sdist)
        check_wheel(wheel)
        with tempfile.TemporaryDirectory(prefix="regfed-wheel-") as tmp:
            check_installed(wheel, Path(tmp))
    except CheckFailed as exc:
        print(f"wheel-check FAILED: {exc}", file=sys.stderr)
        return 1
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()[:16]
    print(f"wheel-check passed: {sdist.name}, {wheel.name} (sha256 {digest}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
