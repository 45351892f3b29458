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
