"""Tokens in websocket URLs never reach the logs."""

from __future__ import annotations

import logging

import pytest

from infra.security.log_redaction import RedactTokens, redact


def test_a_token_in_a_query_string_is_redacted() -> None:
    line = '127.0.0.1:5 - "WebSocket /ws/console?center=130700&token=eyJ.abc.def" [accepted]'
    assert redact(line) == ('127.0.0.1:5 - "WebSocket /ws/console?center=130700&'
                            'token=[redacted]" [accepted]')
    assert redact("/ws/console?token=abc&center=1") == "/ws/console?token=[redacted]&center=1"
    assert redact("center=1&mytoken=keep") == "center=1&mytoken=keep"


def test_the_filter_rewrites_uvicorn_style_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactTokens())
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info('%s - "WebSocket %s" 403', "1.2.3.4:5", "/ws/console?center=1&token=SECRET")
    assert "SECRET" not in caplog.text and "token=[redacted]" in caplog.text
