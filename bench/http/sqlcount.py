"""A process-wide SQL statement counter for the benchmark server (bench settings only).

Every database connection the process opens (a pooled connection counts each time Django takes
it from the pool) gets an execute wrapper that counts statements. The benchmark reads the count
through ``GET /bench/sql/`` before and after each round, so a round's delta is exactly the
statements its requests ran.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_statements = 0


def _count(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    global _statements
    with _lock:
        _statements += 1
    return execute(sql, params, many, context)


def install(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: wrap the connection once."""
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


def statements() -> int:
    """SQL statements executed by this process since it started."""
    with _lock:
        return _statements
