"""Log formats: JSON lines that parse and carry the request id; tracebacks without a
foreign exception's text."""

from __future__ import annotations

import io
import json
import logging

import pytest

from regfed import logs
from regfed.errors import StoreUnavailable

pytestmark = pytest.mark.unit


def logger_to(stream: io.StringIO, formatter: logging.Formatter) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RequestIdFilter())
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


def test_json_line_carries_request_id_and_fields() -> None:
    """One object per line: the request id of the call and the record's fields."""
    stream = io.StringIO()
    logger = logger_to(stream, logs.JsonFormatter())
    token = logs.request_id.set("req-9")
    try:
        logger.info("Issue OK", extra={"fields": {"method": "Issue", "duration_ms": 1.5}})
    finally:
        logs.request_id.reset(token)
    line = json.loads(stream.getvalue())
    assert line["request_id"] == "req-9"
    assert (line["method"], line["duration_ms"], line["message"]) == ("Issue", 1.5, "Issue OK")


@pytest.mark.parametrize("formatter", [logs.JsonFormatter(), logs.TextFormatter(logs.FORMAT)])
def test_tracebacks_withhold_foreign_messages(formatter: logging.Formatter) -> None:
    """A driver's error text (which may quote a value) is withheld; regfed's own message,
    written never to hold personal data, is kept; the frames are all there."""
    stream = io.StringIO()
    logger = logger_to(stream, formatter)
    snils = str(14628735989 + 1)  # computed: the frames show source lines, not values
    try:
        try:
            raise ValueError(f"Key (snils)=({snils}) already exists")
        except ValueError as exc:
            raise StoreUnavailable("certificate store: record failed") from exc
    except StoreUnavailable:
        logger.exception("store failed")
    text = stream.getvalue()
    assert snils not in text
    assert "certificate store: record failed" in text
    assert logs.WITHHELD.split(":")[0] in text
    assert "test_tracebacks_withhold_foreign_messages" in text
