"""Log lines that say which call they belong to, as text or as JSON.

The API sets :data:`request_id` for the duration of each call (from the caller's
``x-request-id`` metadata, else ``IssueRequest.request_id``, else a new one); every line
logged meanwhile, by any module, carries it. :data:`call` holds what the call's own log
line reports besides (the caller's role, the registries' outcomes), filled in by whoever
learns it during the call.

No line may hold personal data — identifiers, names, birth dates, contacts — at any level:
messages name fields and outcomes, never values (``tests/integration/test_no_personal_data``
searches a run's logs for the demo people's data).
"""

from __future__ import annotations

import contextvars
import enum
import json
import logging
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from regfed.errors import RegfedError

NO_REQUEST = "-"
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default=NO_REQUEST)

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


@dataclass(slots=True)
class CallRecord:
    """What one call's log line reports beyond its method, status and duration."""

    role: str = "-"
    caller: str = "-"
    # Each registry asked and how it answered, in the order asked: enum members, whose
    # values the line writes (taken when the line is written, once per combination).
    registries: tuple[tuple[enum.Enum, enum.Enum], ...] = ()


call: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar("call", default=None)


class RequestIdFilter(logging.Filter):
    """Puts the current call's request id on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate, never drop."""
        record.request_id = request_id.get()
        return True


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

WITHHELD = "(message withheld: a foreign exception's text may hold personal data)"


def safe_traceback(exc_info: ExcInfo) -> str:
    """A traceback whose frames are all there but whose exception messages are kept only
    for regfed's own errors (written never to hold personal data): a foreign exception's
    text may quote a value — a name, an identifier, SQL with its parameters."""
    _, value, _ = exc_info
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = value
    link = ""
    while current is not None and id(current) not in seen and len(chain) < 10:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "The above was the direct cause of:"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "During handling of the above, another:"
        else:
            current = None
    parts: list[str] = []
    for exc, link in reversed(chain):
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(exc.__traceback__))
        name = type(exc).__module__ + "." + type(exc).__qualname__
        text = str(exc) if isinstance(exc, RegfedError) else WITHHELD
        parts.append(f"{name}: {text}\n")
        if link:
            parts.append(f"\n{link}\n\n")
    return "".join(parts).rstrip("\n")


class TextFormatter(logging.Formatter):
    """The text format, with tracebacks as :func:`safe_traceback` writes them."""

    def formatException(self, ei: Any) -> str:  # noqa: N802  # logging's name
        """Frames, and only regfed's own messages."""
        return safe_traceback(ei)


# One encoder for every line: json.dumps with options builds a new one per call.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message, and the
    record's ``fields`` (structured values a line carries, e.g. the per-call line's)."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1  # the whole second ``_second_text`` is for: formatted once a second
        self._second_text = ""

    def stamp(self, created: float) -> str:
        """``created`` (a time.time()) as the line's UTC time, to the millisecond."""
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"

    def line(
        self,
        created: float,
        level: str,
        logger: str,
        request: str,
        message: str,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The object of one line (:func:`write_fast` builds it without a record)."""
        entry: dict[str, Any] = {
            "time": self.stamp(created),
            "level": level,
            "logger": logger,
            "request_id": request,
            "message": message,
        }
        if fields:
            entry.update(fields)
        return entry

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry = self.line(
            record.created,
            record.levelname,
            record.name,
            getattr(record, "request_id", NO_REQUEST),
            record.getMessage(),
            getattr(record, "fields", None),
        )
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = safe_traceback(record.exc_info)
        return _JSON.encode(entry)


class BatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes lines in batches: a write per call's log line cost
    more than the line itself under load (each write releases the GIL to grpc's threads).

    A WARNING or worse is written at once with everything before it; INFO and DEBUG lines
    wait at most ``interval`` seconds (a daemon thread flushes them) or until ``batch``
    lines are pending. Closing (logging's shutdown at exit) writes what is left.
    """

    def __init__(self, stream: Any = None, *, interval: float = 0.2, batch: int = 256) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._batch = batch
        self._interval = interval
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._run, name="log-flush", daemon=True)
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Format now (the request id is the current call's), write later."""
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._pending.append(line)
            urgent = record.levelno >= logging.WARNING or len(self._pending) >= self._batch
        if urgent:
            try:
                self.flush()
            except Exception:  # as StreamHandler does: a logging failure never fails the caller
                self.handleError(record)

    def write_line(self, line: str) -> None:
        """A line formatted already (:func:`write_fast`), written with the next batch."""
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line)
            urgent = len(self._pending) >= self._batch
        if urgent:
            try:
                self.flush()
            except Exception:  # a logging failure never fails the caller
                self.handleError(logging.makeLogRecord({"msg": "(a batch of log lines)"}))

    def flush(self) -> None:
        """Write every pending line, then flush the stream."""
        with self.lock:  # type: ignore[union-attr]
            pending, self._pending = self._pending, []
            if pending:
                self.stream.write("".join(pending))
            if self.stream and hasattr(self.stream, "flush"):
                self.stream.flush()

    def close(self) -> None:
        """Stop the flusher and write what is left."""
        self._stop.set()
        self.flush()
        super().close()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except (OSError, ValueError):  # the stream closed under us: nothing to write to
                return


LogFormat = Literal["text", "json"]

# The JSON handler configure() installed, while it is the root logger's only handler.
_fast: BatchingHandler | None = None


def fast_handler(logger: logging.Logger) -> BatchingHandler | None:
    """The JSON handler a line of ``logger`` may be written to directly, without a
    LogRecord: the per-call line is written on every call, and a record's machinery (its
    creation, the handler's dispatch and filters) cost several times the line itself there.

    Only while the configuration is the one configure() made (its JSON handler alone on
    the root logger, nothing on ``logger`` itself); None otherwise, and the caller logs
    the usual way. The caller checks that ``logger`` is enabled for the line's level, and
    writes what :class:`JsonFormatter` would (:func:`json_text`, :meth:`JsonFormatter.stamp`).
    """
    handler = _fast
    handlers = logging.root.handlers
    if handler is None or len(handlers) != 1 or handlers[0] is not handler or logger.handlers:
        return None
    return handler


def json_text(value: str) -> str:
    """``value`` as a JSON string: between quotes as it is when nothing in it needs an
    escape (the usual case: method names, roles, request ids), else encoded."""
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json_value(value)


def json_value(value: Any) -> str:
    """``value`` in JSON, encoded as every JSON line's values are."""
    return _JSON.encode(value)


def configure(*, verbose: bool, log_format: LogFormat | None = None) -> None:
    """Log to standard error, each line with its request id: text on a terminal (or when
    asked), JSON otherwise."""
    for old in logging.getLogger().handlers:
        if isinstance(old, BatchingHandler):
            old.close()
    handler = BatchingHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if log_format is None:
        log_format = "text" if sys.stderr.isatty() else "json"
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(FORMAT))
    global _fast
    _fast = handler if log_format == "json" else None
    # No line says where, in which thread or process it was logged: not collecting it
    # (each a lookup per record, the caller's a walk up the stack) is a third of the
    # per-call line's cost (logging's documented optimisations).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("pgserver").setLevel(logging.WARNING)
