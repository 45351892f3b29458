"""Job fields on every log record made while a job runs, whichever module logs it.

A worker binds the job it runs (:func:`job_scope`) in the thread that runs it; a log record
factory copies the binding onto every record created in that context: ``job_id``,
``tenant_id``, ``attempt``, ``kind`` and ``duration_s`` (seconds since the job started), plus a
``job_context`` text for the text format (empty outside jobs). Doing it at record creation,
not in a handler filter, keeps it right even when records are handled in another thread.

Pure logic: no Django imports (settings import this module).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS

# The JSON formatter's default skip list; settings add "job_context" (text format only).
JSON_RESERVED_ATTRS: list[str] = list(RESERVED_ATTRS)


@dataclass
class JobLogContext:
    job_id: str
    tenant_id: int
    kind: str
    attempt: int | None = None
    started: float = field(default_factory=time.monotonic)

    def text(self) -> str:
        attempt = "-" if self.attempt is None else self.attempt
        return (
            f" job={self.job_id} tenant={self.tenant_id} attempt={attempt} kind={self.kind}"
            f" t={time.monotonic() - self.started:.3f}s"
        )


_current: ContextVar[JobLogContext | None] = ContextVar("academy_job", default=None)


@contextmanager
def job_scope(
    *,
    job_id: object,
    tenant_id: int,
    kind: str,
    attempt: int | None = None,
    started: float | None = None,
) -> Iterator[JobLogContext]:
    """Bind a job to the current context (thread) for the duration of the block.

    ``started`` (``time.monotonic()``) is when the job began, for lines logged about it from
    another thread; by default the block's start.
    """
    context = JobLogContext(job_id=str(job_id), tenant_id=tenant_id, kind=kind, attempt=attempt)
    if started is not None:
        context.started = started
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def current() -> JobLogContext | None:
    return _current.get()


_install_lock = threading.Lock()
_installed = False


def install() -> None:
    """Wrap the process's log record factory once (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            context = _current.get()
            if context is None:
                record.job_context = ""
                return record
            record.job_context = context.text()
            record.job_id = context.job_id
            record.tenant_id = context.tenant_id
            record.attempt = context.attempt
            record.kind = context.kind
            record.duration_s = round(time.monotonic() - context.started, 3)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
