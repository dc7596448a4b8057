"""How a process logs: plain text (the default) or one JSON object per line
(`LINKAGE_LOG_FORMAT=json`), each line with the request id, actor and center of the request it
belongs to (command_center/request_context.py), and never a token or an API key
(infra/security/log_redaction.py filters every handler this installs)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from pythonjsonlogger.orjson import OrjsonFormatter

from command_center.request_context import ACTOR, CENTER, REQUEST_ID

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# uvicorn's own loggers: with JSON logs they hand their records to the root handler.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class RequestContext(logging.Filter):
    """Adds `request_id`, `actor` and `center` (None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.actor = ACTOR.get()
        record.center = CENTER.get()
        return True


def json_formatter(process: str | None = None) -> logging.Formatter:
    return OrjsonFormatter(
        "{levelname}{name}{message}{request_id}{actor}{center}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        static_fields={"process": process} if process else None,
    )


def check_format(log_format: str) -> str:
    if log_format not in FORMATS:
        raise ValueError(f"LINKAGE_LOG_FORMAT must be one of {', '.join(FORMATS)}; "
                         f"got {log_format!r}")
    return log_format


def configure(log_format: str, level: int = logging.INFO, process: str | None = None) -> None:
    """One handler on the root logger (stderr) in the chosen format, with the request context;
    `process` names a child of the server (`sealer`, `writer`) in each line."""
    check_format(log_format)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestContext())
    if log_format == "json":
        handler.setFormatter(json_formatter(process))
    else:
        handler.setFormatter(logging.Formatter(
            TEXT_FORMAT.replace("%(name)s:", f"%(name)s[{process}]:") if process else TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """uvicorn's `log_config`: its default for text; for JSON none of its own, so that its
    records (access lines too) reach the root handler and come out as JSON."""
    if check_format(log_format) == "text":
        from uvicorn.config import LOGGING_CONFIG

        return LOGGING_CONFIG
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {name: {"handlers": [], "propagate": True, "level": "INFO"}
                    for name in UVICORN_LOGGERS},
    }
