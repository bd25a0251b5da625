"""Log formats: JSON lines that parse and carry the request id; tracebacks without a
foreign exception's text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from regfed import logs
from regfed.api.observe import _log_call
from regfed.domain.model import Registry
from regfed.errors import StoreUnavailable
from regfed.federation.fanout import SourceStatus

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


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """logs.configure(json) writing to a string, the root logger restored afterwards."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.configure(verbose=False, log_format="json")
    try:
        yield stream
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


def fast_path_only() -> None:
    """Leave configure()'s handler alone on the root logger, so that the per-call line
    takes its fast path: pytest adds a capturing handler of its own to the root logger
    for each test's call phase, after the fixtures ran."""
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if isinstance(h, logs.BatchingHandler)]
    assert logs.fast_handler(logging.getLogger("regfed.rpc")) is not None


def per_call_line(request: str) -> None:
    """The observing interceptor's line for one Verify call, under ``request``."""
    token = logs.request_id.set(request)
    try:
        record = logs.CallRecord("partner", "certificate verifier.tver.example")
        record.registries = ((Registry.CITY, SourceStatus.MATCHED),)
        _log_call("Verify", request, record, "OK", 0.0042)
    finally:
        logs.request_id.reset(token)


def test_the_per_call_line_is_the_same_written_fast_or_through_a_record(
    configured: io.StringIO,
) -> None:
    """The fast path (no LogRecord) writes what the handler would have written; with any
    other handler on the root logger the line goes the usual way, to every handler."""
    fast_path_only()
    per_call_line("fast-1")
    logging.getLogger().handlers[0].flush()
    fast = json.loads(configured.getvalue())
    other = io.StringIO()
    extra = logging.StreamHandler(other)
    extra.addFilter(logs.RequestIdFilter())
    extra.setFormatter(logs.JsonFormatter())
    logging.getLogger().addHandler(extra)
    try:
        per_call_line("slow-2")
    finally:
        logging.getLogger().removeHandler(extra)
    logging.getLogger().handlers[0].flush()
    slow = json.loads(configured.getvalue().splitlines()[1])
    assert json.loads(other.getvalue()) == slow
    assert (fast["request_id"], slow["request_id"]) == ("fast-1", "slow-2")
    for entry in (fast, slow):
        del entry["time"], entry["request_id"]
    assert fast == slow
    assert fast["logger"] == "regfed.rpc"
    assert fast["caller"] == "certificate verifier.tver.example"
    assert fast["registries"] == {"city": "matched"}


def test_times_are_utc_to_the_millisecond() -> None:
    """The second is formatted once and reused; the milliseconds are each line's own."""
    formatter = logs.JsonFormatter()
    assert formatter.line(1_700_000_000.25, "INFO", "x", "-", "m")["time"] == (
        "2023-11-14T22:13:20.250Z"
    )
    assert formatter.line(1_700_000_000.999, "INFO", "x", "-", "m")["time"] == (
        "2023-11-14T22:13:20.999Z"
    )
    assert formatter.line(1_700_000_001.0, "INFO", "x", "-", "m")["time"] == (
        "2023-11-14T22:13:21.000Z"
    )


@pytest.mark.parametrize(
    "value",
    [
        "Verify",
        "token portal/1a2b3c4d",
        "certificate Тверь",
        'a "quoted" name',
        "back\\slash",
        "line\nbreak",
        "tab\there",
        "\x00",
        "sep\u2028arator",
        "",
    ],
)
def test_json_text_is_what_the_encoder_writes(value: str) -> None:
    """Quoted as it is only when the encoder would write the same; else encoded."""
    assert json.loads(logs.json_text(value)) == value
    assert logs.json_text(value) == json.dumps(value, ensure_ascii=False)


def test_the_fast_line_escapes_a_callers_name(configured: io.StringIO) -> None:
    """A certificate name is configuration, not code: the line stays valid JSON whatever
    it holds."""
    fast_path_only()
    token = logs.request_id.set("req-7")
    try:
        record = logs.CallRecord("partner", 'certificate "odd"\\name\n')
        # Twice: the second line is built from the parts the first one encoded.
        _log_call("Verify", "req-7", record, "PERMISSION_DENIED", 0.001)
        _log_call("Verify", "req-8", record, "PERMISSION_DENIED", 0.0025)
    finally:
        logs.request_id.reset(token)
    logging.getLogger().handlers[0].flush()
    lines = [json.loads(text) for text in configured.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["req-7", "req-8"]
    for line, millis in zip(lines, (1.0, 2.5), strict=True):
        assert line["caller"] == 'certificate "odd"\\name\n'
        message = f"Verify PERMISSION_DENIED role=partner {millis:.1f} ms registries=-"
        assert line["message"] == message
        assert (line["status"], line["registries"], line["duration_ms"]) == (
            "PERMISSION_DENIED",
            {},
            millis,
        )
