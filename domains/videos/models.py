from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class VideoStatus(models.TextChoices):
    # Registered, waiting for the browser's upload: in the database only (PROTOCOL.md §2).
    PENDING_UPLOAD = "PENDING_UPLOAD", _("Waiting for upload")
    UPLOADED = "UPLOADED", _("Uploaded")
    PROCESSING = "PROCESSING", _("Processing")
    READY = "READY", _("Ready")
    FAILED = "FAILED", _("Failed")
    CANCELLED = "CANCELLED", _("Cancelled")


class Video(models.Model):
    """A lecture video and its encoding. Live encoding state is in Redis while it runs."""

    video_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    session_id = models.BigIntegerField(help_text="The lecture session the video belongs to.")
    status = models.CharField(
        max_length=16, choices=VideoStatus.choices, default=VideoStatus.PENDING_UPLOAD
    )
    # The source object, ``uploads/<tenant>/<video_id>/source`` (domains/videos/storage.py).
    file_key = models.CharField(max_length=512)
    # db_default too: rows written by raw SQL (bench/, the EXPLAIN tests) predate uploads.
    filename = models.CharField(max_length=255, blank=True, default="", db_default="")
    content_type = models.CharField(max_length=100, blank=True, default="", db_default="")
    size = models.BigIntegerField(
        null=True, blank=True, help_text="Declared bytes, checked by HEAD."
    )
    # The video_encode job that runs the encode (its lease and attempt fence the worker).
    encode_job_id = models.UUIDField(null=True, blank=True)
    hls_path = models.CharField(max_length=512, blank=True, default="")
    duration = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # POST …/cancel/ was called: the encode job is asked to stop (PROTOCOL.md §2).
    cancel_requested = models.BooleanField(default=False, db_default=False)
    # The encode job's attempt that last started on the video (mirrors the job's fence).
    attempt = models.PositiveIntegerField(default=0)
    # Unused: the encode job's row holds the lease (docs/adr/0013-video-encodes-run-as-jobs.md).
    lease_owner = models.CharField(max_length=128, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "status"], name="video_tenant_status_idx"),
            models.Index(fields=["session_id", "status"], name="video_session_status_idx"),
            # The newest-first list (migration 0003).
            models.Index(fields=["tenant", "created_at", "id"], name="video_tenant_created_idx"),
        ]

    def __str__(self) -> str:
        return f"video:{self.video_id}"
