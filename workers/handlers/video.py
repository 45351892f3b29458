"""``video_encode``: one uploaded video through ffprobe, one ffmpeg ladder and S3 to READY.

The job's lease, heartbeat and attempt fence the encode
(docs/adr/0013-video-encodes-run-as-jobs.md); the service
(``domains.videos.services.video_encode``) does the work and records the video's states.
This handler adapts the job's progress API to the service's port, publishing on the
``video:<id>`` topic through the runner's throttle, and turns the service's outcomes into
the runner's: a FAILED video fails the job (no retry), a CANCELLED one (a cancel request
stopped ffmpeg) cancels it, a full disk or a transient error retries it, a lost job stops the
attempt.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from typing import Any

from django.conf import settings
from django.utils import translation

from domains.videos import services
from domains.videos.services import (
    DiskFull,
    EncodeCancelled,
    EncodeFailed,
    EncodeRefused,
    EncodeStopped,
)
from realtime.keys import Topic
from workers.base import JobCancelled, JobProgress, JobRun, LeaseLost, PermanentError

logger = logging.getLogger(__name__)


class DiskFullRetry(Exception):
    """No room on this worker's disk now: retried, perhaps on another worker."""


class VideoProgress:
    """The encode's progress port onto the job's progress API, on the video's topic."""

    def __init__(self, progress: JobProgress, topic: Topic) -> None:
        self._progress = progress
        self._topic = topic
        self._index = {step: index for index, step in enumerate(services.STEPS, start=1)}
        with translation.override(settings.LANGUAGE_CODE):
            self._display = {step: str(text) for step, text in services.STEP_DISPLAY.items()}

    def report(self, *, step: str, percent: float | None, remaining_seconds: float | None) -> None:
        try:
            self._progress.update(
                topic=self._topic,
                percent=None if percent is None else round(percent, 1),
                step=step,
                step_index=self._index[step],
                step_total=len(self._index),
                step_name_display=self._display[step],
                remaining_seconds=None
                if remaining_seconds is None
                else max(0, math.ceil(remaining_seconds)),
            )
        except (LeaseLost, JobCancelled):
            pass  # stop_reason() and cancel_requested() say so at the next check
        except Exception:
            logger.warning("video progress not published step=%s", step, exc_info=True)

    def stop_reason(self) -> str | None:
        return "the attempt lost its job" if self._progress.lease_lost else None

    def cancel_requested(self) -> bool:
        return self._progress.cancel_requested


class VideoEncodeHandler:
    def __init__(self) -> None:
        self._swept = threading.Event()

    def run(self, job: JobRun, progress: JobProgress) -> dict[str, Any]:
        if not self._swept.is_set():
            self._swept.set()
            # Work dirs of workers killed outright; nothing older can still be running.
            services.workdirs_sweep(older_than=float(settings.VIDEO_HARD_LIMIT_SECONDS))
        video_id = uuid.UUID(job.payload["video_id"])
        try:
            result = services.video_encode(
                job.tenant_id,
                video_id=video_id,
                job_id=job.job_id,
                attempt=job.attempt,
                progress=VideoProgress(progress, Topic.video(video_id)),
            )
        except EncodeRefused as exc:
            raise PermanentError(f"The video cannot be encoded by this job: {exc}") from exc
        except EncodeFailed as exc:
            with translation.override(settings.LANGUAGE_CODE):
                raise PermanentError(services.teacher_text(exc.message)) from exc
        except EncodeCancelled as exc:
            raise JobCancelled(str(exc)) from exc
        except EncodeStopped as exc:
            services.video_encode_lost(job.tenant_id, video_id=video_id, job_id=job.job_id)
            raise LeaseLost(str(exc)) from exc
        except DiskFull as exc:
            if job.receive_count >= settings.SQS_MAX_RECEIVE_COUNT:
                services.video_encode_fail(
                    job.tenant_id,
                    video_id=video_id,
                    job_id=job.job_id,
                    attempt=job.attempt,
                    message=services.m.ENCODE_FAILED,
                    detail=f"no disk space on any try: {exc}",
                )
                raise PermanentError(f"Not enough disk space to encode the video: {exc}") from exc
            raise DiskFullRetry(str(exc)) from exc
        return result.as_dict()
