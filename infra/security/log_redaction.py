"""Keep bearer tokens out of logs: uvicorn logs websocket paths with their query string."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"((?:^|[?&])(?:token|access_token)=)[^&\s\"']+")


def redact(text: str) -> str:
    return _TOKEN.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Rewrites `token=...` in a record's message and string arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install(*names: str) -> None:
    """Add the filter to the named loggers (default: uvicorn's)."""
    for name in names or ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(RedactTokens())
