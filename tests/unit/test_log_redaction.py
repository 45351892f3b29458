import logging

import pytest

from project.logging import RedactTokens

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjo3fQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "message",
    [
        "WebSocket /ws/v1/?token=%s [accepted]",
        "subprotocols ['realtime.v1', 'bearer.%s']",
        "header Authorization: Bearer %s",
    ],
)
def test_tokens_never_reach_a_log_line(message: str) -> None:
    # given a log record whose message carries a token (the parameters)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, message, (JWT,), None)

    # when the redaction filter sees it
    assert RedactTokens().filter(record)

    # then the token is gone from the line
    assert JWT not in record.getMessage()
    assert "[redacted]" in record.getMessage()


def test_other_messages_are_left_alone() -> None:
    # given a log record without a token
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "job %s done", ("42",), None)

    # when the redaction filter sees it
    RedactTokens().filter(record)

    # then the line is unchanged
    assert record.getMessage() == "job 42 done"
