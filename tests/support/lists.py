"""List endpoint helpers: the time rows are made at, and the types of the row-making fixtures
(``make_job``, ``make_video`` in ``tests/integration/lists/conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from domains.jobs.models import Job
from domains.videos.models import Video

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

MakeJob = Callable[..., Job]
MakeVideo = Callable[..., Video]
