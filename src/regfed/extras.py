"""Optional parts of regfed that come with an extra, and the error when one is missing.

A production install (``pip install regfed``) carries neither the embedded PostgreSQL
(``regfed[demo]``) nor the QR-image reader (``regfed[cli]``). Code that needs one imports
it through ``import_extra``, so a missing extra is one line that names it, not a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import click


class MissingExtra(click.ClickException):
    """An optional package is not installed; the message names the extra that brings it.

    A ``ClickException`` so that any ``regfed`` command reports it as one line on stderr
    (exit status 1), wherever it is raised: the embedded database starts deep in the app.
    """

    def __init__(self, purpose: str, module: str, extra: str) -> None:
        super().__init__(
            f"{purpose} needs {module}, in regfed's {extra!r} extra: pip install 'regfed[{extra}]'"
        )
        self.extra = extra


def import_extra(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise ``MissingExtra`` naming ``extra`` when it is not installed."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise  # the extra is there but broken: its own error says more
        raise MissingExtra(purpose, module, extra) from None
