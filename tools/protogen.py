"""Generate the ``regfed.v1`` gRPC modules and their ``.pyi`` stubs from ``protos/``, and
copy the ``.proto`` files into the package beside them.

One function for both ways the code is made: ``make proto`` writes into ``src/`` for the
editable install, and the wheel build (``setup.py``'s ``build_py``) writes into its build
folder. The same files, include paths and generators in both, so the two cannot disagree
on what is generated; ``make wheel-check`` also compares the descriptors the two hold.

Run as ``python tools/protogen.py OUT_DIR`` (``grpcio-tools`` and ``mypy-protobuf``
installed in that Python).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
# Where the .proto files land inside the installed package: an include root, so that
# ``protoc -I <site-packages>/regfed/protos`` finds ``regfed/v1/certificate_service.proto``.
PACKAGE_PROTOS = Path("regfed") / "protos"
GENERATED_PATTERNS = ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py", "*_pb2_grpc.pyi")


def proto_files() -> list[Path]:
    """Every ``.proto`` under ``protos/``, relative to it."""
    return sorted(p.relative_to(PROTO_ROOT) for p in PROTO_ROOT.rglob("*.proto"))


def _plugin(name: str) -> str:
    """The path of a protoc plugin installed beside this Python (build environments may
    not put their scripts folder on PATH)."""
    folders = [os.path.dirname(sys.executable), sysconfig.get_path("scripts")]
    search = os.pathsep.join([*folders, os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is None:
        raise RuntimeError(f"{name} not found: install mypy-protobuf")
    return found


def generate(out: Path) -> list[Path]:
    """Write the generated modules and stubs under ``out`` (the folder holding ``regfed/``),
    removing any earlier generated file first, and copy the protos; the files written."""
    from grpc_tools import protoc  # a build requirement, not a runtime one

    files = proto_files()
    packages = {out / f.parent for f in files}
    for package in packages:
        for pattern in GENERATED_PATTERNS:
            for stale in package.glob(pattern):
                stale.unlink()
        package.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(f) for f in files),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on " + ", ".join(map(str, files)))

    proto_dest = out / PACKAGE_PROTOS
    shutil.rmtree(proto_dest, ignore_errors=True)
    for f in files:
        (proto_dest / f.parent).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROTO_ROOT / f, proto_dest / f)

    written = [p for d in packages for pattern in GENERATED_PATTERNS for p in d.glob(pattern)]
    return sorted(written + [proto_dest / f for f in files])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/protogen.py OUT_DIR")
    for path in generate(Path(sys.argv[1])):
        print(path)
