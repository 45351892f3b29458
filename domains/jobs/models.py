from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    PENDING = "PENDING", _("Pending")
    PROCESSING = "PROCESSING", _("Processing")
    DONE = "DONE", _("Done")
    FAILED = "FAILED", _("Failed")
    CANCELLED = "CANCELLED", _("Cancelled")


# The statuses a job ends in (PROTOCOL.md §2): it never changes again.
TERMINAL_STATUSES = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    """The permanent record of an asynchronous job. Its live state is in Redis while it runs."""

    job_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    job_type = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    payload = models.JSONField(default=dict)
    attempt = models.PositiveIntegerField(default=0)
    # The worker attempt holding the job, and until when (ARCHITECTURE.md "Job lifecycle").
    lease_owner = models.CharField(max_length=128, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=128, blank=True, default="")
    error = models.TextField(blank=True, default="")
    # Someone asked the job to stop (POST …/cancel/): a PENDING job is CANCELLED at once, a
    # running one by its worker, which reads this at its heartbeat (PROTOCOL.md §2).
    cancel_requested = models.BooleanField(default=False, db_default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The outbox (docs/adr/0011-the-job-row-is-the-outbox.md): when the job's queue message
    # went out (NULL: not yet; the relay sends it), and when its terminal state reached Redis
    # (NULL on a finished job: not yet; the relay republishes it).
    message_sent_at = models.DateTimeField(null=True, blank=True)
    terminal_published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "status"], name="job_tenant_status_idx"),
            models.Index(fields=["tenant", "job_id"], name="job_tenant_jobid_idx"),
            # Partial: they hold only the rows the relay has work for, so they stay tiny.
            models.Index(
                fields=["created_at"],
                name="job_unsent_idx",
                condition=models.Q(status="PENDING", message_sent_at__isnull=True),
            ),
            models.Index(
                fields=["finished_at"],
                name="job_unpublished_idx",
                condition=models.Q(
                    status__in=["DONE", "FAILED", "CANCELLED"], terminal_published_at__isnull=True
                ),
            ),
            # The newest-first list (migration 0003).
            models.Index(fields=["tenant", "created_at", "id"], name="job_tenant_created_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "created_by", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="uniq_job_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_type}:{self.job_id}"


class JobResult(models.Model):
    job = models.OneToOneField(
        Job, primary_key=True, on_delete=models.CASCADE, related_name="result"
    )
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"result:{self.job_id}"
