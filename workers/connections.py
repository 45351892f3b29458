"""Where the promise "a worker holds at most ``slots + 1`` database connections" is kept.

Django opens a connection per thread on first use and keeps it until closed, so the bound
holds only if every thread that touches the database closes its connection when it is done:

- **job threads** (at most ``slots``) use the database during the claim and the settling
  (finish, lease release); each such call sits in :func:`closing` (``workers/runner.py``), so
  no connection is held while the handler runs, and the thread closes everything it may
  still hold when it ends (``Worker.execute``).
- **the supervisor** (one) wraps each pass in :func:`closing` (``workers/supervisor.py``):
  heartbeats, time limits and the dead-letter sweep share that one connection. Its second
  thread, the one that waits on Redis (cancel flags, republish retries), never touches the
  database.
- **shutdown** runs in the poller thread only after the supervisor has stopped, so it takes
  the supervisor's place rather than adding to it; it closes what it used before returning.
- **the poller** never touches the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django import db


@contextmanager
def closing() -> Iterator[None]:
    """Run a block that may use this thread's database connection, then close it."""
    try:
        yield
    finally:
        db.connection.close()


def close_all() -> None:
    """Close every connection this thread holds (a job thread ends, the worker stops)."""
    db.connections.close_all()
