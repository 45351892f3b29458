"""The import's progress port and the arithmetic behind it. Pure: no Django.

The worker routes progress to Redis (ARCHITECTURE.md: published per chunk, never written to
the database); tests pass a fake that records the calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class ImportProgress(Protocol):
    def __call__(
        self,
        step: str,
        step_index: int,
        step_total: int,
        percent: float,
        remaining_seconds: float | None,
    ) -> None: ...


# (step, first percent, last percent): reading and classifying are quick next to writing.
STEPS: tuple[tuple[str, float, float], ...] = (
    ("read", 0.0, 20.0),
    ("classify", 20.0, 30.0),
    ("write", 30.0, 100.0),
)
# For the state document's step_name_display (PROTOCOL.md §3).
STEP_DISPLAY = {"read": "파일 읽기", "classify": "학생 확인", "write": "학생 등록"}
_STEP_INDEX = {name: (index, low, high) for index, (name, low, high) in enumerate(STEPS, 1)}


class ProgressTracker:
    """Turns "step X is N % done" into the port's call, with a time-left estimate for writing."""

    def __init__(
        self, sink: ImportProgress | None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._step_started: dict[str, float] = {}

    def report(self, step: str, done: float) -> None:
        """``done`` is the fraction (0-1) of ``step`` finished; report 0 when a step starts."""
        if self._sink is None:
            return
        index, low, high = _STEP_INDEX[step]
        now = self._clock()
        started = self._step_started.setdefault(step, now)
        done = min(max(done, 0.0), 1.0)
        remaining: float | None = None
        if step == "write" and done > 0:
            # Chunks are the same size, so the time per chunk so far predicts the rest.
            remaining = round((now - started) / done * (1.0 - done), 1)
        percent = round(low + (high - low) * done, 1)
        self._sink(step, index, len(STEPS), percent, remaining)
