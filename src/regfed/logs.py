"""Log lines that say which call they belong to.

The API sets :data:`request_id` for the duration of each call (from the caller's
``x-request-id`` metadata, else ``IssueRequest.request_id``, else a new one); every line
logged meanwhile, by any module, carries it.
"""

from __future__ import annotations

import contextvars
import logging
import sys

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class RequestIdFilter(logging.Filter):
    """Puts the current call's request id on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate, never drop."""
        record.request_id = request_id.get()
        return True


def configure(*, verbose: bool) -> None:
    """Log to standard error, each line with its request id."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("pgserver").setLevel(logging.WARNING)
