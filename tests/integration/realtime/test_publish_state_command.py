"""``manage.py publish_state``: applies a change through the workers' script, and refuses one
that contradicts the database record unless ``--force`` (PROTOCOL.md §5a)."""

import json
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from domains.jobs import repository
from domains.jobs.models import Job, JobStatus
from realtime import store
from realtime.keys import Topic
from tests.conftest import Member


def recorded_job(member: Member, status: JobStatus, attempt: int = 0) -> Topic:
    """A job row in the member's tenant with the given status (nothing in Redis)."""
    with transaction.atomic():
        job = repository.job_insert(
            member.tenant.id,
            job_type="messaging.send",
            payload={},
            created_by_id=member.user.id,
            idempotency_key="",
        )
    Job.objects.filter(job_id=job.job_id).update(status=status, attempt=attempt)
    return Topic.job(job.job_id)


def publish_state(tenant_id: int, topic: Topic, *args: str) -> dict[str, object]:
    out = StringIO()
    call_command(
        "publish_state", "--tenant", str(tenant_id), "--topic", str(topic), *args, stdout=out
    )
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_publish_state_applies_a_change_that_agrees_with_the_record(alpha_staff: Member) -> None:
    # given a job the database records as PROCESSING at attempt 1
    topic = recorded_job(alpha_staff, JobStatus.PROCESSING, attempt=1)
    tenant = alpha_staff.tenant.id

    # when its status is published, then progress on it
    publish_state(tenant, topic, "--status", "PROCESSING", "--attempt", "1")
    document = publish_state(
        tenant, topic, "--status", "PROCESSING", "--percent", "40", "--step", "sending"
    )

    # then both were applied and printed
    assert (document["seq"], document["status"], document["progress"]["percent"]) == (  # type: ignore[index]
        2,
        "PROCESSING",
        40,
    )
    assert store.snapshot(tenant, topic).seq == 2  # type: ignore[union-attr]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("recorded", "args", "reason"),
    [
        (JobStatus.FAILED, ["--status", "PROCESSING"], "as FAILED, not PROCESSING"),
        (JobStatus.FAILED, ["--status", "DONE"], "as FAILED, not DONE"),
        (JobStatus.PENDING, ["--status", "FAILED", "--error", "x"], "as PENDING, not FAILED"),
        (JobStatus.PROCESSING, ["--status", "PROCESSING", "--attempt", "3"], "attempt 2, not 3"),
    ],
)
def test_publish_state_refuses_a_state_the_record_contradicts(
    alpha_staff: Member, recorded: JobStatus, args: list[str], reason: str
) -> None:
    # given a job the database records with a status (attempt 2)
    topic = recorded_job(alpha_staff, recorded, attempt=2)

    # when an operator publishes another status or attempt without --force
    with pytest.raises(CommandError) as refused:
        publish_state(alpha_staff.tenant.id, topic, *args)

    # then it is refused with the record's word, and Redis was not touched
    assert reason in str(refused.value)
    assert "--force" in str(refused.value)
    assert store.snapshot(alpha_staff.tenant.id, topic) is None


@pytest.mark.django_db
def test_publish_state_refuses_a_job_that_does_not_exist_or_belongs_to_another_tenant(
    alpha_staff: Member, beta_staff: Member
) -> None:
    # given a job of tenant beta, and a job id nobody has
    beta_topic = recorded_job(beta_staff, JobStatus.PENDING)
    nobody = Topic.job(uuid.uuid4())

    # when an operator publishes for them in tenant alpha
    with pytest.raises(CommandError) as other_tenant:
        publish_state(alpha_staff.tenant.id, beta_topic, "--status", "PENDING")
    with pytest.raises(CommandError) as missing:
        publish_state(alpha_staff.tenant.id, nobody, "--status", "PENDING")

    # then both are refused as absent in that tenant, and nothing was written anywhere
    assert f"tenant {alpha_staff.tenant.id} has no job" in str(other_tenant.value)
    assert f"tenant {alpha_staff.tenant.id} has no job" in str(missing.value)
    assert store.snapshot(alpha_staff.tenant.id, beta_topic) is None
    assert store.snapshot(beta_staff.tenant.id, beta_topic) is None
    assert store.snapshot(alpha_staff.tenant.id, nobody) is None


@pytest.mark.django_db
def test_publish_state_refuses_a_video_that_does_not_exist(alpha_staff: Member) -> None:
    # given a video id with no record
    topic = Topic.video(uuid.uuid4())

    # when its state is published / then it is refused
    with pytest.raises(CommandError, match="has no video"):
        publish_state(alpha_staff.tenant.id, topic, "--status", "UPLOADED")


@pytest.mark.django_db
def test_force_publishes_against_the_record(alpha_staff: Member) -> None:
    # given a job the database records as FAILED
    topic = recorded_job(alpha_staff, JobStatus.FAILED)

    # when an operator forces PROCESSING
    document = publish_state(alpha_staff.tenant.id, topic, "--status", "PROCESSING", "--force")

    # then it was applied
    assert document["status"] == "PROCESSING"
    assert store.snapshot(alpha_staff.tenant.id, topic).status == "PROCESSING"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "args",
    [
        ["--topic", "job:nope", "--status", "PENDING"],
        ["--topic", f"job:{uuid.uuid4()}", "--status", "READY"],  # not a job status
    ],
)
def test_publish_state_refuses_bad_input_before_reading_the_database(args: list[str]) -> None:
    # given input that names no topic or no status of its kind (no database access allowed)
    # when it is published / then the command refuses it
    with pytest.raises(CommandError):
        call_command("publish_state", "--tenant", "5", *args)
