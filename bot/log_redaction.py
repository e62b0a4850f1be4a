"""Logging that never writes what a shopper typed, a slot value or a token, whoever logs.

Rasa 3.6.21 logs user text in several places our code cannot reach: structlog events carry
``text=...`` (``rest.message.received.timeout`` at ERROR), its JSON renderer writes every
frame's local variables with a traceback (``structlog.processors.dict_tracebacks``), Python
warnings quote slot values, and exception messages repeat their input. So the redaction is not
done caller by caller but once per log record, when the record is made:

- a structlog event (a JSON object with an ``event`` key) keeps only the keys in ``SAFE_KEYS``;
  the others are replaced by ``[redacted]``;
- a traceback keeps the frames (file, line, function) and the exception's type, never its
  message or any variable;
- a warning's quoted values are replaced;
- in every line, claim codes (any spelling the parser accepts), customer tokens (JWTs) and
  ``token=`` query parameters are hidden, as the last net.

``install()`` puts this in place for the whole process (a log record factory, plus a filter on
every handler for fields added after the record is made, such as Sanic's access-log URL). The
Rasa server and the action server get it from ``logging.yml`` (``--logging-config-file``, see
scripts/serve.sh); the project's channels install it again once Sanic has set up its handlers.
Records below INFO are still made (``--debug`` works), with the same redaction, but
``logging.yml`` writes INFO and above only.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from types import TracebackType
from typing import Any

REDACTED = "[redacted]"
SAFE_KEYS = frozenset(
    {"event", "level", "timestamp", "event_key", "logger", "action_name", "policy_name"}
)
"""Keys of a structlog event that never hold user text (names of things, not their values)."""

_TOKEN_PARAMETER = re.compile(r"((?:token|auth_token|access_token)=)[^&\s\"']+", re.IGNORECASE)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def scrub_text(text: str) -> str:
    """``text`` without claim codes, customer tokens or ``token=`` parameters."""
    from bot.tokens import mask_tokens
    from bot.wallet import codes

    try:
        text = codes.mask_claim_codes(text)
    except Exception:  # the log line must never be the thing that fails
        return "[log line withheld]"
    text = mask_tokens(text)
    return _TOKEN_PARAMETER.sub(r"\1[hidden]", text)


def safe_traceback(
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None],
) -> str:
    """Where an exception happened and its type: never its message or any variable."""
    kind, _, tb = exc_info
    frames = traceback.extract_tb(tb)
    lines = [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in frames]
    return "\n".join(["Traceback (most recent call last; values withheld):", *lines, kind.__name__])


def _redact_structured(event: dict[str, Any]) -> dict[str, Any]:
    safe: dict[str, Any] = {}
    for key, value in event.items():
        if key in SAFE_KEYS:
            safe[key] = value
        elif key == "exception" and isinstance(value, list):
            safe[key] = [_safe_exception(item) for item in value]
        else:
            safe[key] = REDACTED
    return safe


def _safe_exception(item: Any) -> Any:
    """One exception of structlog's dict_tracebacks, without its value or locals."""
    if not isinstance(item, dict):
        return REDACTED
    frames = [
        {k: frame.get(k) for k in ("filename", "lineno", "name")}
        for frame in item.get("frames") or []
        if isinstance(frame, dict)
    ]
    return {"exc_type": item.get("exc_type"), "frames": frames}


def redact_message(message: str, logger_name: str = "") -> str:
    """A log message as it may be written."""
    stripped = message.lstrip()
    if stripped.startswith("{"):
        try:
            event = json.loads(stripped)
        except ValueError:
            event = None
        if isinstance(event, dict) and "event" in event:
            message = json.dumps(_redact_structured(event))
    if logger_name == "py.warnings":
        message = _QUOTED.sub(REDACTED, message)
    return scrub_text(message)


def redact_record(record: logging.LogRecord) -> None:
    """Make ``record`` safe to write, in place (idempotent)."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string or arguments: keep the template only
        message = str(record.msg)
    record.msg, record.args = redact_message(message, record.name), ()
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = safe_traceback(record.exc_info)
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = scrub_text(record.exc_text)
    # Sanic's access log adds the request line (with its query string) after the record is made.
    for field in ("request", "host"):
        value = record.__dict__.get(field)
        if isinstance(value, str):
            record.__dict__[field] = scrub_text(value)


class RedactionFilter(logging.Filter):
    """A handler filter that redacts, never drops: for fields set after a record is made."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def installing_filter() -> RedactionFilter:
    """The filter ``logging.yml`` names; making it installs the redaction for the process."""
    install()
    return RedactionFilter()


_installed: list[Any] = []


def install() -> None:
    """Redact every log record this process makes; filter every handler it has now."""
    if not _installed:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        logging.captureWarnings(True)  # warnings quote slot values: through the redaction too
        _installed.append(factory)
    loggers = [logging.getLogger()] + [
        item
        for item in logging.Logger.manager.loggerDict.values()
        if isinstance(item, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactionFilter) for f in handler.filters):
                handler.addFilter(RedactionFilter())
