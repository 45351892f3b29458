"""Where the promise "a worker holds at most ``slots + 1`` database connections" is kept.

A worker process (``ACADEMY_PROCESS=worker``) takes its connections from a psycopg pool
(``OPTIONS["pool"]``, ``project/settings.py``) that :func:`pool_bound` narrows to ``slots + 1``
when the worker is built, before its first query. The pool then *is* the bound: it never opens
more, whoever asks. Connections stay open in it between jobs, so a claim and a finish do not
each start a PostgreSQL backend (bench/workers/RESULTS.md).

Django hands a thread a connection on first use and keeps it until closed, so each thread
closes (gives back to the pool) what it took, and no thread holds one for longer than a
transition. At most ``slots + 1`` are ever out at once, so a checkout never waits for another
thread's connection:

- **job threads** (at most ``slots``) use the database during the claim and the settling
  (finish, lease release); each such call sits in :func:`closing` (``workers/runner.py``), so
  the handler runs without a connection checked out, and the thread gives back everything it
  may still hold when it ends (``Worker.execute``).
- **the supervisor** (one) wraps each pass in :func:`closing` (``workers/supervisor.py``):
  heartbeats, time limits and the dead-letter sweep share that one connection. Its second
  thread, the one that waits on Redis (cancel flags, republish retries), never touches the
  database.
- **the progress throttle's flush thread** reads a job's record only to rebuild a topic Redis
  lost (``realtime.rebuild``, rare); the worker wraps that publish in :func:`closed_after`, so
  the connection goes back at once instead of staying with the thread for the process's life.
  Should it ever coincide with every other holder, the pool's cap still holds: that checkout
  waits for a connection to come back (at most ``WORKER_DB_POOL_TIMEOUT``).
- **shutdown** runs in the poller thread only after the supervisor has stopped, so it takes
  the supervisor's place rather than adding to it; it closes what it used before returning.
- **the poller** never touches the database.

With ``WORKER_DB_POOL=false`` there is no pool: every transition opens and closes its own
connection, and the same discipline keeps the count at ``slots + 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from django import db
from django.db import DEFAULT_DB_ALIAS

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def closing() -> Iterator[None]:
    """Run a block that may use this thread's database connection, then close it (give it
    back to the pool)."""
    try:
        yield
    finally:
        db.connection.close()


def closed_after(call: Callable[P, R]) -> Callable[P, R]:
    """``call``, closing the calling thread's connection after it (see :func:`closing`)."""

    def closed(*args: P.args, **kwargs: P.kwargs) -> R:
        with closing():
            return call(*args, **kwargs)

    return closed


def close_all() -> None:
    """Close every connection this thread holds (a job thread ends, the worker stops)."""
    db.connections.close_all()


def pool_bound(size: int) -> int | None:
    """Cap this process's connection pool at ``size`` connections; returns the cap, or None
    when the process has no pool.

    Called with ``slots + 1`` when a worker is built. It only ever narrows: a configured
    ``WORKER_DB_POOL_MAX_SIZE`` below ``size`` stays. A pool opened already is resized.
    """
    if size < 1:
        raise ValueError("a pool holds at least one connection")
    settings_dict = db.connections.settings[DEFAULT_DB_ALIAS]
    options = settings_dict.get("OPTIONS", {}).get("pool")
    if not options:
        return None
    if options is True:
        options = settings_dict["OPTIONS"]["pool"] = {}
    cap = min(size, int(options.get("max_size") or size))
    options["max_size"] = cap
    options["min_size"] = min(int(options.get("min_size", 0)), cap)
    pool = getattr(db.connections[DEFAULT_DB_ALIAS], "pool", None)  # PostgreSQL's wrapper
    if pool is not None and pool.max_size != cap:
        pool.resize(min_size=options["min_size"], max_size=cap)
    return cap


def pool_close() -> None:
    """Close this process's pool and the connections in it (the worker has stopped)."""
    connection = db.connections[DEFAULT_DB_ALIAS]
    close_pool = getattr(connection, "close_pool", None)
    if close_pool is not None and getattr(connection, "pool", None) is not None:
        close_pool()
