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


@pytest.mark.parametrize("name", ["%74oken", "to%6Ben", "%74%6F%6B%65%6E", "TOKEN", "%2574oken",
                                  "access%5Ftoken", "access_token"])
def test_a_parameter_is_judged_by_its_decoded_name(name: str) -> None:
    line = f'1.2.3.4:5 - "WebSocket /ws/console?center=1&{name}=eyJ.SECRET.sig" [accepted]'
    assert redact(line) == f'1.2.3.4:5 - "WebSocket /ws/console?center=1&{name}=[redacted]" [accepted]'


def test_an_exception_text_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction.errors")
    logger.addFilter(RedactTokens())
    with caplog.at_level(logging.ERROR, logger="test.redaction.errors"):
        try:
            raise ValueError("could not open /ws/feed?%74oken=SECRET")
        except ValueError:
            logger.exception("failed")
    assert "SECRET" not in caplog.text and "%74oken=[redacted]" in caplog.text


def test_install_reaches_the_handlers_of_every_logger(caplog: pytest.LogCaptureFixture) -> None:
    from infra.security.log_redaction import install

    install()
    with caplog.at_level(logging.INFO):
        logging.getLogger("command_center.somewhere").info("/x?%74oken=SECRET")
    # caplog's handler sits on the root logger: a record of any logger reaching it is redacted.
    assert "SECRET" not in caplog.text
