"""Video services: registering an upload, queueing the encode, the encode itself, playback.

The lifecycle (ARCHITECTURE.md "Video encoding", PROTOCOL.md §2):
``PENDING_UPLOAD`` (database only) → ``UPLOADED`` → ``PROCESSING`` → ``READY`` | ``FAILED`` |
``CANCELLED``.

Cancel (``video_cancel``): a video no encode runs for yet is CANCELLED at once (its encode job
too, if PENDING); a running encode's job gets ``cancel_requested``, its worker stops ffmpeg
(SIGTERM, then SIGKILL), the video ends CANCELLED and its attempt's outputs are deleted.

The encode runs as a ``video_encode`` job on the ``video`` queue, so the job runner's lease,
heartbeat, time limit and attempt fencing apply unchanged
(docs/adr/0013-video-encodes-run-as-jobs.md).
The video row mirrors the job's attempt; every worker transition on it locks the job row first
and is refused unless that attempt still runs the job, then locks the video. States are
published to the ``video:<id>`` topic after the transaction commits (STYLE.md §3).
"""

from __future__ import annotations

import functools
import logging
import math
import posixpath
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from domains.common.cursors import Cursor, Page, page_cut
from domains.common.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationFailed,
)
from domains.jobs import services as jobs
from domains.jobs.models import JobStatus
from domains.videos import encoder, repository, storage
from domains.videos import messages as m
from domains.videos.ffmpeg import ffprobe_command, hls_encode_command, variant_playlist_uris
from domains.videos.ffprogress import Progress, ProgressEstimator
from domains.videos.hls import MASTER_PLAYLIST, HlsInvalid, resolve_uri, rewrite_playlist
from domains.videos.hls import validate_output as hls_validate_output
from domains.videos.ladder import choose_ladder
from domains.videos.messages import Message
from domains.videos.models import Video, VideoStatus
from domains.videos.payloads import VIDEO_ENCODE
from domains.videos.probe import ProbeError, parse_probe
from domains.videos.storage import video_keys
from realtime import store
from realtime.identity import Caller, Role, sees_topic, visible_owner
from realtime.keys import Topic, TopicKind
from realtime.state import STATUSES, Change

logger = logging.getLogger(__name__)

UPLOAD_ROLES = frozenset({Role.ADMIN, Role.STAFF, Role.TEACHER})
TERMINAL = frozenset({VideoStatus.READY, VideoStatus.FAILED, VideoStatus.CANCELLED})
FILENAME_MAX_LENGTH = 255
ERROR_DETAIL_MAX = 2000
RUNG_NAME = re.compile(r"[0-9]{2,4}p")

# The teacher-facing texts of domains.videos.messages, for gettext: the English text is the
# msgid, the Korean one is in locale/ko/LC_MESSAGES/django.po (a test keeps the two in step).
TEACHER_TEXTS: dict[str, Any] = {
    m.UNREADABLE.code: _(
        "The video file cannot be read. It may be damaged or not completely uploaded. "
        "Upload the original file again."
    ),
    m.NO_VIDEO_STREAM.code: _(
        "The file has no picture: it is sound only, or not a video. "
        "Upload an mp4, mov, webm or mkv video file."
    ),
    m.NO_DURATION.code: _(
        "The length of the video cannot be determined. Save it again as MP4 in a video editor "
        "and upload it."
    ),
    m.ENCODE_FAILED.code: _(
        "The video could not be converted. Try again later, and tell an administrator if it "
        "keeps failing."
    ),
    m.OUTPUT_INVALID.code: _(
        "The converted video does not match the original, so it was not published. Check that "
        "the original file uploaded completely and upload it again."
    ),
    m.TIMED_OUT.code: _(
        "Converting the video took longer than allowed and was stopped. Split the video into "
        "shorter parts and upload them again."
    ),
    m.SOURCE_MISSING.code: _(
        "The uploaded video file can no longer be found. Upload the file again."
    ),
}
# The encode's steps (PROTOCOL.md §2 progress hash), in order, with their share of the percent.
STEPS = ("probing", "encoding", "uploading", "finalizing")
STEP_DISPLAY: dict[str, Any] = {
    "probing": _("Checking the video"),
    "encoding": _("Converting"),
    "uploading": _("Saving"),
    "finalizing": _("Finishing"),
}
STEP_RANGES = {
    "probing": (0.0, 2.0),
    "encoding": (2.0, 90.0),
    "uploading": (90.0, 99.0),
    "finalizing": (99.0, 99.9),
}


def teacher_text(message: Message) -> str:
    """The message in the active language (gettext), the module's own text as a fallback."""
    text = TEACHER_TEXTS.get(message.code)
    return str(text) if text is not None else message.text(translation.get_language())


def error_display(stored: str) -> str:
    """A stored error (an English msgid) in the caller's language."""
    return gettext(stored) if stored else ""


# --- reading --------------------------------------------------------------------------------
def video_get_for_caller(tenant_id: int, *, video_id: uuid.UUID, caller: Caller) -> Video:
    """The video record if the caller may see it; otherwise NotFound, as if it did not exist."""
    if caller.tenant_id != tenant_id:
        raise NotFound()
    video = repository.video_for_detail(tenant_id, video_id=video_id)
    if video is None or not sees_topic(caller, owner_id=video.created_by_id):
        raise NotFound()
    return video


def video_encode_outcome_repair(tenant_id: int, *, video: Video) -> Video:
    """Read repair: a video whose encode job ended FAILED without the video (the runner's time
    limit, the last receive, the dead-letter sweep) is failed now, with a teacher's message;
    one whose encode job ended CANCELLED (before its worker got to the video, or cancelled
    through the jobs API) is cancelled now."""
    if video.status in TERMINAL or video.encode_job_id is None:
        return video
    if video.attempt == 0 and video.status != VideoStatus.UPLOADED:
        return video
    outcome = jobs.job_outcome(tenant_id, job_id=video.encode_job_id)
    if outcome is not None and outcome.status == JobStatus.CANCELLED:
        _video_cancel_settle(tenant_id, video_id=video.video_id, job_id=video.encode_job_id)
        return repository.video_for_detail(tenant_id, video_id=video.video_id) or video
    if video.attempt == 0 or outcome is None or outcome.status != JobStatus.FAILED:
        return video
    message = m.TIMED_OUT if "time limit" in outcome.error else m.ENCODE_FAILED
    video_encode_fail(
        tenant_id,
        video_id=video.video_id,
        job_id=video.encode_job_id,
        attempt=outcome.attempt,
        message=message,
        detail=f"the encode job failed: {outcome.error}",
        require_running_job=False,
    )
    return repository.video_for_detail(tenant_id, video_id=video.video_id) or video


# --- registering and completing an upload --------------------------------------------------
@dataclass(frozen=True, slots=True)
class Registration:
    video: Video
    upload_url: str
    upload_headers: dict[str, str]
    expires_at: datetime


def _extension(filename: str) -> str:
    return posixpath.splitext(filename.lower())[1]


def _upload_refusals(*, filename: str, size: int, content_type: str) -> dict[str, list[str]]:
    types: dict[str, tuple[str, ...]] = settings.VIDEO_UPLOAD_TYPES
    limit = settings.VIDEO_UPLOAD_MAX_BYTES
    fields: dict[str, list[str]] = {}
    if size < 1:
        fields["size"] = [gettext("The file is empty.")]
    elif size > limit:
        fields["size"] = [
            gettext("The file is %(size)s bytes; at most %(limit)s are accepted.")
            % {"size": f"{size:,}", "limit": f"{limit:,}"}
        ]
    allowed = ", ".join(sorted({ext.lstrip(".") for exts in types.values() for ext in exts}))
    extensions = types.get(content_type.lower())
    if extensions is None:
        fields["content_type"] = [
            gettext("Upload a video file (%(allowed)s).") % {"allowed": allowed}
        ]
    if _extension(filename) not in (
        extensions or tuple(ext for exts in types.values() for ext in exts)
    ):
        fields["filename"] = [
            gettext("The file name must end in one of: %(allowed)s, matching its type.")
            % {"allowed": allowed}
        ]
    return fields


def video_register(
    tenant_id: int,
    *,
    caller: Caller,
    session_id: int,
    filename: str,
    size: int,
    content_type: str,
) -> Registration:
    """A PENDING_UPLOAD row and a presigned PUT for its source; a refusal writes nothing."""
    if caller.tenant_id != tenant_id:
        raise PermissionDenied()
    if caller.role not in UPLOAD_ROLES:
        raise PermissionDenied(gettext("Your role may not upload videos."))
    name = posixpath.basename(filename.replace("\\", "/")).strip()[:FILENAME_MAX_LENGTH]
    refusals = _upload_refusals(filename=name, size=size, content_type=content_type)
    if refusals:
        raise ValidationFailed(fields=refusals)
    video_id = uuid.uuid4()
    keys = video_keys(tenant_id, video_id)
    expires = settings.VIDEO_UPLOAD_URL_SECONDS
    content_type = content_type.lower()
    try:
        url = storage.upload_url(keys.source, content_type=content_type, size=size, expires=expires)
    except (BotoCoreError, ClientError) as exc:
        logger.exception("upload URL not signed tenant=%s", tenant_id)
        raise ServiceUnavailable() from exc
    video = repository.video_insert(
        tenant_id,
        video_id=video_id,
        session_id=session_id,
        file_key=keys.source,
        filename=name,
        content_type=content_type,
        size=size,
        created_by_id=caller.user_id,
    )
    logger.info("video registered tenant=%s video=%s size=%s", tenant_id, video_id, size)
    return Registration(
        video=video,
        upload_url=url,
        upload_headers={"Content-Type": content_type},
        expires_at=timezone.now() + timedelta(seconds=expires),
    )


def video_complete_upload(tenant_id: int, *, caller: Caller, video_id: uuid.UUID) -> Video:
    """Check the uploaded object, mark the video UPLOADED and queue its encode.

    Repeating it changes nothing while the video is not terminal (its encode is queued or
    running); a terminal video is a conflict. The encode is queued again only when the first
    queueing failed (the queue was unreachable and the job FAILED before any attempt).
    """
    video_get_for_caller(tenant_id, video_id=video_id, caller=caller)
    with transaction.atomic():
        video = repository.video_lock(tenant_id, video_id=video_id)
        if video is None:
            raise NotFound()
        if video.status in TERMINAL:
            raise Conflict(gettext("The video has already been processed."))
        if video.status != VideoStatus.PENDING_UPLOAD and not _needs_requeue(tenant_id, video):
            return video
        if video.status == VideoStatus.PENDING_UPLOAD:
            _upload_checked(video)
            video.status = VideoStatus.UPLOADED
            store.publish_on_commit(
                tenant_id,
                Topic.video(video.video_id),
                Change(
                    status=VideoStatus.UPLOADED,
                    attempt=0,
                    owner_id=video.created_by_id,
                    session_id=video.session_id,
                ),
            )
        job = jobs.job_create(
            tenant_id,
            caller=caller,
            job_type=VIDEO_ENCODE,
            payload={"video_id": str(video.video_id)},
            internal=True,
        )
        video.encode_job_id = job.job_id
        repository.video_save(tenant_id, video=video, fields=["status", "encode_job_id"])
    logger.info("video upload complete tenant=%s video=%s", tenant_id, video_id)
    return video


def _needs_requeue(tenant_id: int, video: Video) -> bool:
    if video.encode_job_id is None:
        return True
    outcome = jobs.job_outcome(tenant_id, job_id=video.encode_job_id)
    return outcome is None or (outcome.status == JobStatus.FAILED and outcome.attempt == 0)


def _upload_checked(video: Video) -> None:
    try:
        stored = storage.object_size(video.file_key)
    except storage.ObjectMissing:
        raise ValidationFailed(
            gettext("The file has not been uploaded yet."),
            fields={"upload": [gettext("Upload the file to upload_url first.")]},
        ) from None
    except (BotoCoreError, ClientError) as exc:
        logger.exception("upload not checked video=%s", video.video_id)
        raise ServiceUnavailable() from exc
    if stored != video.size:
        raise ValidationFailed(
            gettext("The uploaded file is not the declared size."),
            fields={
                "size": [
                    gettext("%(stored)s bytes were uploaded, %(declared)s were declared.")
                    % {"stored": f"{stored:,}", "declared": f"{video.size:,}"}
                ]
            },
        )


# --- the encode's transitions (worker side) ------------------------------------------------
class EncodeRefused(Exception):
    """This job cannot encode this video (no such video, another job's, not uploaded)."""


@dataclass(frozen=True, slots=True)
class EncodeResult:
    video_id: uuid.UUID
    hls_path: str
    duration: float | None
    attempt: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "video_id": str(self.video_id),
            "hls_path": self.hls_path,
            "duration": self.duration,
            "attempt": self.attempt,
        }


def video_encode_begin(
    tenant_id: int, *, video_id: uuid.UUID, job_id: uuid.UUID, attempt: int
) -> Video:
    """PROCESSING for ``attempt``; returns the video (READY or FAILED ones as they are)."""
    with transaction.atomic():
        video = repository.video_lock(tenant_id, video_id=video_id)
        if video is None:
            raise EncodeRefused(f"no video {video_id} in tenant {tenant_id}")
        if video.encode_job_id != job_id:
            raise EncodeRefused(f"job {job_id} is not the encode job of video {video_id}")
        if video.status in TERMINAL:
            return video
        if video.status == VideoStatus.PENDING_UPLOAD:
            raise EncodeRefused(f"video {video_id} has not been uploaded")
        if attempt <= video.attempt:
            raise EncodeRefused(f"attempt {attempt} is not newer than {video.attempt}")
        video.status = VideoStatus.PROCESSING
        video.attempt = attempt
        repository.video_save(tenant_id, video=video, fields=["status", "attempt"])
        store.publish_on_commit(
            tenant_id,
            Topic.video(video_id),
            Change(
                status=VideoStatus.PROCESSING,
                attempt=attempt,
                owner_id=video.created_by_id,
                session_id=video.session_id,
            ),
        )
    return video


def _fenced_video(
    tenant_id: int, *, video_id: uuid.UUID, job_id: uuid.UUID, attempt: int, running_job: bool
) -> Video | None:
    """Inside a transaction: the locked video if ``attempt`` still owns it (job row first)."""
    outcome = jobs.job_outcome(tenant_id, job_id=job_id, lock=True)
    if outcome is None or outcome.attempt != attempt:
        return None
    if running_job and outcome.status != JobStatus.PROCESSING:
        return None
    video = repository.video_lock(tenant_id, video_id=video_id)
    if video is None or video.encode_job_id != job_id or video.attempt != attempt:
        return None
    if video.status != VideoStatus.PROCESSING:
        return None
    return video


def video_encode_ready(
    tenant_id: int,
    *,
    video_id: uuid.UUID,
    job_id: uuid.UUID,
    attempt: int,
    hls_path: str,
    duration: float,
) -> bool:
    """The finishing transaction: READY with ``hls_path`` and ``duration``, if still ours."""
    with transaction.atomic():
        video = _fenced_video(
            tenant_id, video_id=video_id, job_id=job_id, attempt=attempt, running_job=True
        )
        if video is None:
            logger.warning(
                "READY refused tenant=%s video=%s attempt=%s", tenant_id, video_id, attempt
            )
            return False
        video.status = VideoStatus.READY
        video.hls_path = hls_path
        video.duration = duration
        video.error = ""
        repository.video_save(
            tenant_id, video=video, fields=["status", "hls_path", "duration", "error"]
        )
        store.publish_on_commit(
            tenant_id,
            Topic.video(video_id),
            Change(
                status=VideoStatus.READY,
                attempt=attempt,
                owner_id=video.created_by_id,
                session_id=video.session_id,
                hls_path=hls_path,
                duration=duration,
            ),
        )
    return True


def video_encode_fail(
    tenant_id: int,
    *,
    video_id: uuid.UUID,
    job_id: uuid.UUID,
    attempt: int,
    message: Message,
    detail: str,
    require_running_job: bool = True,
) -> bool:
    """FAILED with the teacher's message (its English text stored, translated on reading)."""
    with transaction.atomic():
        video = _fenced_video(
            tenant_id,
            video_id=video_id,
            job_id=job_id,
            attempt=attempt,
            running_job=require_running_job,
        )
        if video is None:
            return False
        with translation.override("en"):
            video.error = teacher_text(message)
        with translation.override(settings.LANGUAGE_CODE):
            published = teacher_text(message)
        video.status = VideoStatus.FAILED
        repository.video_save(tenant_id, video=video, fields=["status", "error"])
        store.publish_on_commit(
            tenant_id,
            Topic.video(video_id),
            Change(
                status=VideoStatus.FAILED,
                attempt=attempt,
                owner_id=video.created_by_id,
                session_id=video.session_id,
                error=published,
            ),
        )
    logger.warning(
        "video failed tenant=%s video=%s attempt=%s code=%s detail=%s",
        tenant_id,
        video_id,
        attempt,
        message.code,
        detail[-ERROR_DETAIL_MAX:],
    )
    try:
        storage.prefix_delete(video_keys(tenant_id, video_id).outputs)
    except (BotoCoreError, ClientError):
        logger.warning("outputs of a failed video not deleted video=%s", video_id, exc_info=True)
    return True


# --- cancel ---------------------------------------------------------------------------------
def video_cancel(tenant_id: int, *, caller: Caller, video_id: uuid.UUID) -> dict[str, Any]:
    """``POST /media/videos/{id}/cancel/``: the video's state document once the request is made.

    NotFound for a video the caller may not see, PermissionDenied for a role that may not
    upload, Conflict once it is READY, FAILED or CANCELLED. A video no encode runs for yet
    (waiting for its file, or uploaded with its encode job still queued) is CANCELLED now; a
    running encode is asked to stop (``cancel_requested`` on the video and its encode job),
    and its worker ends it CANCELLED. Repeating the request meanwhile changes nothing.
    """
    video = video_get_for_caller(tenant_id, video_id=video_id, caller=caller)
    if caller.role not in UPLOAD_ROLES:
        raise PermissionDenied(gettext("Your role may not cancel videos."))
    video = video_encode_outcome_repair(tenant_id, video=video)
    answer = jobs.CancelAnswer()
    with transaction.atomic():
        job = None
        if video.encode_job_id is not None:
            # The job row first, then the video (docs/adr/0013-video-encodes-run-as-jobs.md).
            job = jobs.job_cancel_request(tenant_id, job_id=video.encode_job_id)
        locked = repository.video_lock(tenant_id, video_id=video_id)
        if locked is None:
            raise NotFound()
        if locked.status in TERMINAL:
            raise Conflict(gettext("The video has already been processed; it cannot be cancelled."))
        locked.cancel_requested = True
        if job is jobs.CancelResult.REQUESTED:
            # An encode runs (or its job was claimed): its worker stops it.
            repository.video_save(tenant_id, video=locked, fields=["cancel_requested"])
            change = _record_change(locked)
            if change is not None:
                store.publish_on_commit(
                    tenant_id,
                    Topic.video(video_id),
                    change,
                    on_success=answer.published,
                    on_failure=answer.unavailable,
                )
        else:
            _video_cancelled(
                tenant_id, locked, on_published=answer.published, on_failure=answer.unavailable
            )
    logger.info("video cancel requested tenant=%s video=%s job=%s", tenant_id, video_id, job)
    return answer.document()


def _video_cancelled(
    tenant_id: int,
    video: Video,
    *,
    on_published: Callable[[Any], None] | None = None,
    on_failure: store.PublishRetry | None = None,
) -> None:
    """Inside the video's transaction (video locked): CANCELLED, published after the commit."""
    video.status = VideoStatus.CANCELLED
    video.cancel_requested = True
    repository.video_save(tenant_id, video=video, fields=["status", "cancel_requested"])
    store.publish_on_commit(
        tenant_id,
        Topic.video(video.video_id),
        Change(
            status=VideoStatus.CANCELLED,
            attempt=video.attempt,
            owner_id=video.created_by_id,
            session_id=video.session_id,
            cancel_requested=True,
        ),
        on_success=on_published,
        on_failure=on_failure,
    )


def _outputs_delete(tenant_id: int, video_id: uuid.UUID) -> None:
    """Every output object of the video (each attempt's prefix); logged, never raised."""
    try:
        deleted = storage.prefix_delete(video_keys(tenant_id, video_id).outputs)
    except (BotoCoreError, ClientError):
        logger.warning("outputs of a video not deleted video=%s", video_id, exc_info=True)
        return
    if deleted:
        logger.info("deleted %s output object(s) video=%s", deleted, video_id)


def video_encode_cancelled(
    tenant_id: int, *, video_id: uuid.UUID, job_id: uuid.UUID, attempt: int
) -> bool:
    """The worker stopped the encode on a cancel request: CANCELLED if ``attempt`` still owns
    the video and its job, then the outputs (the attempt's prefix included) are deleted."""
    with transaction.atomic():
        video = _fenced_video(
            tenant_id, video_id=video_id, job_id=job_id, attempt=attempt, running_job=True
        )
        if video is None:
            logger.warning(
                "CANCELLED refused tenant=%s video=%s attempt=%s", tenant_id, video_id, attempt
            )
            return False
        _video_cancelled(tenant_id, video)
    logger.info("video cancelled tenant=%s video=%s attempt=%s", tenant_id, video_id, attempt)
    _outputs_delete(tenant_id, video_id)
    return True


def video_encode_cancelled_unrun(tenant_id: int, job_id: uuid.UUID) -> bool:
    """The encode job ended CANCELLED before any worker touched the video (the jobs app's
    hook, after its commit; ``domains/jobs/hooks.py``): the video is cancelled now, so its
    watchers see CANCELLED instead of UPLOADED. True when it was."""
    video_id = repository.video_id_for_encode_job(tenant_id, job_id=job_id)
    if video_id is None:
        return False
    return _video_cancel_settle(tenant_id, video_id=video_id, job_id=job_id)


def _video_cancel_settle(tenant_id: int, *, video_id: uuid.UUID, job_id: uuid.UUID) -> bool:
    """Its encode job is CANCELLED but the video is not (read repair): cancel it now."""
    with transaction.atomic():
        outcome = jobs.job_outcome(tenant_id, job_id=job_id, lock=True)
        if outcome is None or outcome.status != JobStatus.CANCELLED:
            return False
        video = repository.video_lock(tenant_id, video_id=video_id)
        if video is None or video.encode_job_id != job_id or video.status in TERMINAL:
            return False
        _video_cancelled(tenant_id, video)
    logger.info("video cancelled with its encode job tenant=%s video=%s", tenant_id, video_id)
    _outputs_delete(tenant_id, video_id)
    return True


# --- the encode ----------------------------------------------------------------------------
class EncodeProgress(Protocol):
    """What the encode needs from its runner: a place for progress, and whether to stop."""

    def report(
        self, *, step: str, percent: float | None, remaining_seconds: float | None
    ) -> None: ...

    def stop_reason(self) -> str | None:
        """Why the attempt must stop now (it lost its job), or None."""
        ...

    def cancel_requested(self) -> bool:
        """Whether the job was asked to stop (the encode then ends CANCELLED)."""
        ...


class EncodeFailed(Exception):
    """The video ended FAILED (the record says so); ``message`` is for the teacher."""

    def __init__(self, message: Message, detail: str) -> None:
        super().__init__(f"{message.code}: {detail[-500:]}")
        self.message = message
        self.detail = detail


class EncodeStopped(Exception):
    """The attempt stopped because it no longer owns the job; the record is not changed."""


class EncodeCancelled(Exception):
    """The encode stopped on a cancel request; the video is CANCELLED, its outputs deleted."""


class DiskFull(Exception):
    """Not enough free disk for this job on this worker; another try may find room."""


@dataclass
class _Run:
    tenant_id: int
    video: Video
    job_id: uuid.UUID
    attempt: int
    progress: EncodeProgress
    deadline: float
    step: str = "probing"

    def report(self, step: str, fraction: float | None, remaining: float | None = None) -> None:
        low, high = STEP_RANGES[step]
        percent = None if fraction is None else low + (high - low) * min(1.0, max(0.0, fraction))
        self.step = step
        self.progress.report(step=step, percent=percent, remaining_seconds=remaining)

    def stop_reason(self) -> str | None:
        """What stops ffmpeg: the lost job first, then a cancel request."""
        reason = self.progress.stop_reason()
        if reason is None and self.progress.cancel_requested():
            return "cancel requested"
        return reason

    def check(self) -> None:
        reason = self.progress.stop_reason()
        if reason is not None:
            raise EncodeStopped(reason)
        if self.progress.cancel_requested():
            raise EncodeCancelled(f"cancel requested while {self.step}")
        if time.monotonic() >= self.deadline:
            self.fail(m.TIMED_OUT, f"time limit reached while {self.step}")

    def fail(self, message: Message, detail: str) -> None:
        video_encode_fail(
            self.tenant_id,
            video_id=self.video.video_id,
            job_id=self.job_id,
            attempt=self.attempt,
            message=message,
            detail=detail,
        )
        raise EncodeFailed(message, detail)


def encode_time_limit() -> float:
    return float(settings.VIDEO_HARD_LIMIT_SECONDS) - float(settings.VIDEO_ENCODE_MARGIN_SECONDS)


def work_root() -> Path:
    root = Path(settings.VIDEO_WORK_ROOT or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return root


def video_encode(
    tenant_id: int,
    *,
    video_id: uuid.UUID,
    job_id: uuid.UUID,
    attempt: int,
    progress: EncodeProgress,
    started: float | None = None,
    time_limit: float | None = None,
) -> EncodeResult:
    """Encode one uploaded video into HLS under its attempt's prefix and make it READY.

    Raises :class:`EncodeRefused`, :class:`EncodeFailed` (the video is FAILED, cleaned up),
    :class:`EncodeStopped` (lost the job: nothing recorded), :class:`EncodeCancelled` (a cancel
    request: the video is CANCELLED, cleaned up), :class:`DiskFull` (retry) or a transient
    error (S3, database: retried). The work directory is always removed.
    """
    started = time.monotonic() if started is None else started
    limit = encode_time_limit() if time_limit is None else time_limit
    video = video_encode_begin(tenant_id, video_id=video_id, job_id=job_id, attempt=attempt)
    if video.status == VideoStatus.READY:
        _dead_attempts_delete(tenant_id, video_id=video_id, attempt=video.attempt)
        return EncodeResult(video_id, video.hls_path, video.duration, video.attempt)
    if video.status == VideoStatus.FAILED:
        raise EncodeFailed(m.ENCODE_FAILED, f"video already FAILED: {video.error}")
    if video.status == VideoStatus.CANCELLED:
        raise EncodeCancelled("video already CANCELLED")
    run = _Run(tenant_id, video, job_id, attempt, progress, deadline=started + limit)
    workdir = Path(tempfile.mkdtemp(prefix=f"video-{video_id}-{attempt}-", dir=work_root()))
    try:
        if video.cancel_requested:
            raise EncodeCancelled("cancel requested before the encode began")
        return _encode_in(run, workdir)
    except EncodeCancelled:
        # ffmpeg has exited and no upload is in flight: nothing writes the outputs any more.
        video_encode_cancelled(tenant_id, video_id=video_id, job_id=job_id, attempt=attempt)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _encode_in(run: _Run, workdir: Path) -> EncodeResult:
    tenant_id, video = run.tenant_id, run.video
    keys = video_keys(tenant_id, video.video_id)
    reserve = settings.VIDEO_DISK_RESERVE_BYTES
    run.report("probing", 0.0)
    _disk_checked(workdir, (video.size or 0) + reserve)
    source = workdir / "source"
    try:
        storage.download(keys.source, source)
    except storage.ObjectMissing:
        run.fail(m.SOURCE_MISSING, f"no object at {keys.source}")
    run.check()
    probed = encoder.run_probe(ffprobe_command(source))
    try:
        probe = parse_probe(probed.stdout, returncode=probed.returncode, stderr=probed.stderr)
    except ProbeError as exc:
        run.fail(exc.message, exc.detail)
        raise  # unreachable: fail() raises
    ladder = choose_ladder(probe.width, probe.height)
    _disk_checked(workdir, encoder.output_bytes_estimate(ladder, probe.duration) + reserve)
    run.report("probing", 1.0)

    output = workdir / "hls"
    output.mkdir()
    command = hls_encode_command(
        source,
        output,
        probe=probe,
        ladder=ladder,
        preset=settings.VIDEO_ENCODE_PRESET,
        threads=settings.VIDEO_ENCODE_THREADS or None,
    )
    estimator = ProgressEstimator(probe.duration)
    run.report("encoding", 0.0)

    def on_progress(block: Progress) -> None:
        estimate = estimator.update(block)
        fraction = None if estimate.percent is None else estimate.percent / 100
        run.report("encoding", fraction, estimate.remaining_seconds)

    encoded = encoder.run_encode(
        command,
        on_progress=on_progress,
        should_stop=run.stop_reason,
        deadline=run.deadline,
    )
    if encoded.stopped == "time limit":
        run.fail(m.TIMED_OUT, f"ffmpeg stopped at the time limit: {encoded.stderr_tail}")
    if encoded.stopped is not None:
        run.check()  # EncodeStopped (lost the job) or EncodeCancelled
        raise EncodeStopped(encoded.stopped)
    if encoded.returncode != 0:
        run.fail(m.ENCODE_FAILED, f"ffmpeg exited {encoded.returncode}: {encoded.stderr_tail}")
    try:
        hls = hls_validate_output(
            output, expected_variants=variant_playlist_uris(ladder), duration=probe.duration
        )
    except HlsInvalid as exc:
        run.fail(exc.message, str(exc))
        raise  # unreachable

    prefix = keys.attempt(run.attempt)
    names = hls.upload_order
    begun = time.monotonic()
    run.report("uploading", 0.0)
    uploads = storage.upload_files(output, names, prefix)
    try:
        for done, _name in enumerate(uploads, start=1):
            run.check()
            elapsed = time.monotonic() - begun
            left = elapsed / done * (len(names) - done)
            run.report("uploading", done / len(names), left)
    finally:
        uploads.close()  # a stop between files: the queued uploads are dropped, not awaited

    run.report("finalizing", 0.0, 0)
    hls_path = prefix + MASTER_PLAYLIST
    if not video_encode_ready(
        tenant_id,
        video_id=video.video_id,
        job_id=run.job_id,
        attempt=run.attempt,
        hls_path=hls_path,
        duration=probe.duration,
    ):
        raise EncodeStopped("another attempt owns the video")
    _dead_attempts_delete(tenant_id, video_id=video.video_id, attempt=run.attempt)
    logger.info(
        "video READY tenant=%s video=%s attempt=%s rungs=%s duration=%.2f",
        tenant_id,
        video.video_id,
        run.attempt,
        ",".join(rung.name for rung in ladder),
        probe.duration,
    )
    return EncodeResult(video.video_id, hls_path, probe.duration, run.attempt)


def _disk_checked(workdir: Path, needed: int) -> None:
    try:
        encoder.disk_check(workdir, needed=needed)
    except encoder.DiskTooFull as exc:
        logger.error("video work dir %s refused: %s", workdir, exc)
        raise DiskFull(str(exc)) from exc


def _dead_attempts_delete(tenant_id: int, *, video_id: uuid.UUID, attempt: int) -> None:
    """The cleanup step after READY: objects of every other attempt of the video go."""
    try:
        deleted = storage.objects_delete_except(video_keys(tenant_id, video_id), attempt=attempt)
    except (BotoCoreError, ClientError):
        # The next delivery of the job (or a later READY read) tries again.
        logger.warning("dead attempts not cleaned video=%s", video_id, exc_info=True)
        return
    if deleted:
        logger.info("deleted %s object(s) of dead attempts video=%s", deleted, video_id)


def video_encode_lost(tenant_id: int, *, video_id: uuid.UUID, job_id: uuid.UUID) -> None:
    """After an attempt lost its job: if the job ended FAILED (its time limit), so does the
    video, and its outputs are deleted; a job taken over by another attempt changes nothing."""
    video = repository.video_for_detail(tenant_id, video_id=video_id)
    if video is not None and video.encode_job_id == job_id:
        video_encode_outcome_repair(tenant_id, video=video)


def workdirs_sweep(*, older_than: float) -> int:
    """Remove work directories left by killed workers (older than ``older_than`` seconds)."""
    root = work_root()
    cutoff = time.time() - older_than
    removed = 0
    for path in root.glob("video-*"):
        try:
            if path.is_dir() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


# --- playback -------------------------------------------------------------------------------
def _playable(tenant_id: int, *, video_id: uuid.UUID, caller: Caller) -> Video:
    video = video_get_for_caller(tenant_id, video_id=video_id, caller=caller)
    if video.status != VideoStatus.READY or not video.hls_path:
        raise Conflict(gettext("The video is not ready to play yet."))
    return video


def _url_lifetime(video: Video) -> int:
    return int(settings.VIDEO_PLAYBACK_URL_SECONDS + 2 * math.ceil(video.duration or 0))


def video_master_playlist(
    tenant_id: int,
    *,
    video_id: uuid.UUID,
    caller: Caller,
    variant_url: Callable[[str], str],
) -> str:
    """The READY video's master playlist, each variant pointing at ``variant_url(rung)``."""
    video = _playable(tenant_id, video_id=video_id, caller=caller)
    text = _object_text(video.hls_path)

    def sign(uri: str) -> str:
        rung, _, rest = uri.partition("/")
        if not RUNG_NAME.fullmatch(rung) or rest != "index.m3u8":
            raise ValueError(f"unexpected variant URI {uri!r}")
        return variant_url(rung)

    return rewrite_playlist(text, sign)


def video_variant_playlist(
    tenant_id: int, *, video_id: uuid.UUID, caller: Caller, rung: str
) -> str:
    """A variant playlist of a READY video with presigned segment URLs."""
    video = _playable(tenant_id, video_id=video_id, caller=caller)
    if not RUNG_NAME.fullmatch(rung):
        raise NotFound()
    keys = video_keys(tenant_id, video.video_id)
    root = posixpath.dirname(video.hls_path)
    if not keys.owns(video.hls_path):
        raise NotFound()
    key = f"{root}/{rung}/index.m3u8"
    text = _object_text(key)
    lifetime = _url_lifetime(video)

    def sign(uri: str) -> str:
        return storage.download_url(resolve_uri(key, uri, root=root), expires=lifetime)

    return rewrite_playlist(text, sign)


def _object_text(key: str) -> str:
    try:
        return storage.object_text(key)
    except storage.ObjectMissing:
        raise NotFound() from None
    except (BotoCoreError, ClientError) as exc:
        logger.exception("playlist not read key=%s", key)
        raise ServiceUnavailable() from exc


def video_state_repair(tenant_id: int, *, video: Video) -> bool:
    """Rebuild the video's live state from the record a caller just read if Redis lost it (or
    publish its terminal state if Redis still shows it running); True when it published."""
    change = _record_change(video)
    if change is None:
        return False
    repaired = store.repair_from_record(tenant_id, Topic.video(video.video_id), lambda: change)
    if repaired:
        logger.info("live state repaired on read tenant=%s video=%s", tenant_id, video.video_id)
    return repaired


def video_state_from_record(tenant_id: int, topic: Topic) -> Change | None:
    """A video topic's whole live state as its record says (the videos' ``realtime.rebuild``
    hook); None when the tenant has no such video, or its status has no live state."""
    video = repository.video_for_detail(tenant_id, video_id=topic.id)
    return None if video is None else _record_change(video)


def rewound_videos_restore(*, since: datetime, batch: int) -> int:
    """Restore the terminal states of videos that a Redis gone back in time shows running
    again: every video that ended at or after ``since`` gets its record's state at a new epoch
    (``store.restore_terminal``), as ``domains.jobs.outbox.rewound_terminals_restore`` does for
    jobs (a video's READY has no published mark of its own, so its last change stands for it).
    Returns how many; raises ``RealtimeUnavailable`` at the first Redis failure."""
    restored = 0
    after: tuple[datetime, int] | None = None
    while True:
        videos = repository.videos_finished_since(since=since, after=after, limit=batch)
        for video in videos:
            change = _record_change(video)
            if change is not None and store.restore_terminal(
                video.tenant_id, Topic.video(video.video_id), functools.partial(_same, change)
            ):
                restored += 1
                logger.info(
                    "relay: video state restored after a Redis rewind tenant=%s video=%s",
                    video.tenant_id,
                    video.video_id,
                )
        if len(videos) < batch:
            return restored
        after = (videos[-1].updated_at, videos[-1].id)


def _same(change: Change) -> Change:
    return change


def _record_change(video: Video) -> Change | None:
    if video.status not in STATUSES[TopicKind.VIDEO]:
        return None  # a status that lives in the database only (waiting for its upload)
    return Change(
        status=video.status,
        attempt=video.attempt,
        owner_id=video.created_by_id,
        session_id=video.session_id,
        error=video.error or None,
        hls_path=video.hls_path or None,
        duration=video.duration,
        cancel_requested=video.cancel_requested,
    )


def videos_list_for_caller(
    tenant_id: int,
    *,
    caller: Caller,
    session_id: int | None = None,
    statuses: tuple[str, ...] = (),
    after: Cursor | None = None,
    size: int,
) -> Page[repository.VideoListRow]:
    """One page of the tenant's videos, newest first: all of them for staff and admin, the
    caller's own for everyone else (the visibility rule of PROTOCOL.md §4, as a filter)."""
    if caller.tenant_id != tenant_id:
        raise PermissionDenied()
    rows = repository.videos_page(
        tenant_id,
        owner_id=visible_owner(caller),
        session_id=session_id,
        statuses=statuses,
        after=after,
        limit=size + 1,
    )
    return page_cut(rows, size=size, key_of=lambda row: row.key)
