"""daphne as ``make demo`` and the end-to-end tests run it, its access log through ``logging``.

daphne writes its access log straight to a stream, with the query string
(``"GET /api/v1/jobs/?token=..."``), out of reach of the log filters that redact tokens
(PROTOCOL.md §4; audit F10). Here each access line becomes a record of the ``daphne.access``
logger, so it meets ``project.logging.RedactTokens`` like every other line. Arguments are
daphne's own: ``python -m project.daphne_server -b 127.0.0.1 -p 8000 project.asgi:application``.
"""

from __future__ import annotations

import datetime
import logging

from daphne import cli
from daphne.access import AccessLogGenerator

logger = logging.getLogger("daphne.access")


class LoggedAccess(AccessLogGenerator):  # type: ignore[misc]
    """daphne's access lines, as log records rather than writes to a stream."""

    def write_entry(
        self,
        host: str,
        date: datetime.datetime,
        request: str,
        status: int | None = None,
        length: int | None = None,
        ident: str | None = None,
        user: str | None = None,
    ) -> None:
        logger.info('%s "%s" %s %s', host, request, status or "-", length or "-")


def main() -> None:
    # daphne builds its access logger from this name in CommandLineInterface.run().
    cli.AccessLogGenerator = LoggedAccess
    cli.CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
