"""create_queues (idempotent, with redrive) and demo_job (a job through the service)."""

from __future__ import annotations

import io
import json
from typing import Any

from django.core.management import call_command

from domains.common.aws import sqs_client
from domains.jobs.dispatch import QueueKind, queue_url
from domains.jobs.models import Job
from tests.support.members import PASSWORD, Member
from tests.support.workers import moto_reset, queue_bodies
from workers.config import dlq_url, queue_config


def _attributes(url: str) -> dict[str, str]:
    return sqs_client().get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_create_queues_creates_each_kind_with_its_dead_letter_queue_and_is_idempotent() -> None:
    # given no queues in moto
    moto_reset()
    first, second = io.StringIO(), io.StringIO()

    # when create_queues runs twice
    call_command("create_queues", stdout=first)
    call_command("create_queues", stdout=second)

    # then every kind has its queue and dead-letter queue with the seeds' settings, made once
    assert first.getvalue().count("created") == 8  # six queues, the uploads and video buckets
    assert second.getvalue().count("up to date") == 8
    for kind in QueueKind:
        main = _attributes(queue_url(kind))
        policy = json.loads(main["RedrivePolicy"])
        dead_letter = dlq_url(kind)
        assert dead_letter is not None
        assert policy["deadLetterTargetArn"] == _attributes(dead_letter)["QueueArn"]
        assert int(policy["maxReceiveCount"]) == 3
        assert main["VisibilityTimeout"] == str(queue_config(kind).visibility_timeout)
        assert main["ReceiveMessageWaitTimeSeconds"] == "20"
        assert int(_attributes(dead_letter)["MessageRetentionPeriod"]) > int(
            main["MessageRetentionPeriod"]
        )
    assert _attributes(queue_url(QueueKind.AI))["VisibilityTimeout"] == "3600"


def test_demo_job_creates_a_messaging_job_for_the_user_and_prints_its_topic(
    alpha_staff: Member, django_capture_on_commit_callbacks: Any
) -> None:
    # given a staff member of alpha
    out = io.StringIO()

    # when demo_job runs with their login
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "demo_job",
            "--tenant",
            "alpha",
            "--user",
            alpha_staff.username,
            "--password",
            PASSWORD,
            "--recipients",
            "3",
            stdout=out,
        )

    # then their messaging job is created, queued once, and its topic printed
    job = Job.objects.get()
    assert (job.job_type, job.created_by_id, job.tenant_id) == (
        "messaging.send",
        alpha_staff.user.id,
        alpha_staff.tenant.id,
    )
    assert len(job.payload["recipients"]) == 4  # three students and one bad address
    assert f"topic      job:{job.job_id}" in out.getvalue()
    assert f"watch_job {job.job_id}" in out.getvalue()
    assert [body["job_id"] for body in queue_bodies()] == [str(job.job_id)]
