"""Logging filters for every handler."""

from __future__ import annotations

import logging
import re

# ?token=<jwt> in WebSocket URLs, bearer.<jwt> subprotocols and Authorization headers.
_SECRET = re.compile(r"(token=|bearer[.\s]|Bearer\s)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


class RedactTokens(logging.Filter):
    """Replace access tokens in log lines with ``[redacted]`` (PROTOCOL.md §4)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRET.search(message):
            record.msg = _SECRET.sub(r"\1[redacted]", message)
            record.args = ()
        return True


# What uvicorn writes at INFO for every WebSocket, on its "uvicorn.error" logger whatever
# --no-access-log says: the accept (an access line in all but name), and the websockets
# library's open and close, which uvicorn's sansio protocol logs on the same logger.
_CONNECTION_LINES = frozenset(
    {'%s - "WebSocket %s" [accepted]', "connection open", "connection closed"}
)


class WebSocketConnectionLines(logging.Filter):
    """Drop uvicorn's three INFO lines per WebSocket unless ``LOG_WEBSOCKET_CONNECTIONS``.

    At thousands of sockets a process, a reconnect wave writes three lines per client (a few
    per cent of a handshake's CPU) that say nothing the metrics do not; a refused handshake
    (``403``) and every warning still go through. One comparison of the unformatted message.
    """

    def __init__(self, enabled: bool = False) -> None:
        super().__init__()
        self.enabled = enabled

    def filter(self, record: logging.LogRecord) -> bool:
        return self.enabled or record.levelno > logging.INFO or record.msg not in _CONNECTION_LINES
