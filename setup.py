"""The build hook: a wheel's ``regfed.v1`` modules, stubs and ``.proto`` files are made at
build time from ``protos/``, by the same ``tools/protogen.py`` that ``make proto`` runs,
so a wheel never carries stale generated code. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.build_py import build_py


def _protogen() -> ModuleType:
    path = Path(__file__).resolve().parent / "tools" / "protogen.py"
    spec = importlib.util.spec_from_file_location("protogen", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithProtos(build_py):
    """``build_py``, then the generated gRPC code and the protos into the build folder."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install imports src/, where `make proto` generates
        for path in _protogen().generate(Path(self.build_lib)):
            print(f"generated {path}")


setup(cmdclass={"build_py": BuildPyWithProtos})
