"""Keep bearer tokens out of logs: uvicorn logs websocket paths with their query string.

A query parameter is judged by its name as the server decodes it, so `%74oken=` (which Starlette
reads as `token`) is redacted like `token=`. Messages, their string arguments and the text of
any exception are rewritten.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

SECRET_PARAMETERS = frozenset({"token", "access_token", "api_key"})  # api_key: Open311 clients
_PARAMETER = re.compile(r"(?P<lead>^|[?&])(?P<name>[^=&?\s\"']+)=(?P<value>[^&\s\"']*)")
# A feed API key (infra/security/api_keys.py) wherever it appears: its id stays, its secret goes.
_FEED_KEY = re.compile(r"(?P<id>lk_[0-9a-f]{12}_)[A-Za-z0-9_-]{8,}")


def _decoded(name: str) -> str:
    # Decoded until it no longer changes (bounded): a name encoded twice is no less a token.
    for _ in range(4):
        decoded = unquote_plus(name)
        if decoded == name:
            break
        name = decoded
    return name.strip().lower()


def _redact_parameter(match: re.Match[str]) -> str:
    if _decoded(match["name"]) not in SECRET_PARAMETERS:
        return match[0]
    return f"{match['lead']}{match['name']}=[redacted]"


def redact(text: str) -> str:
    return _FEED_KEY.sub(r"\g<id>[redacted]", _PARAMETER.sub(_redact_parameter, text))


class RedactTokens(logging.Filter):
    """Rewrites token parameters in a record's message, string arguments and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set: format the traceback once, redacted.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(*names: str) -> None:
    """Add the filter to the named loggers (default: uvicorn's) and to every handler they and
    the root logger have: a handler's filter sees the records of every logger that reaches it."""
    loggers = [logging.getLogger(name)
               for name in names or ("uvicorn", "uvicorn.error", "uvicorn.access")]
    for logger in [*loggers, logging.getLogger()]:
        for target in [logger, *logger.handlers]:
            if not any(isinstance(f, RedactTokens) for f in target.filters):
                target.addFilter(RedactTokens())
