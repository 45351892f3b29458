"""The outbox columns (docs/adr/0011-the-job-row-is-the-outbox.md) and what existing rows hold.

Existing rows: every job past PENDING was received by a worker, so its message counts as sent;
every finished job counts as published (wave 1 republished on read and redelivery, and an old
terminal state nobody watches is not worth a burst of writes at deploy time). PENDING rows stay
unsent: the relay sends them once, which rescues any job a dead process left PENDING (a
duplicate message for a job that is in fact queued is dropped by the worker's claim).
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import Coalesce, Now


def existing_rows_marked(apps, schema_editor):  # type: ignore[no-untyped-def]
    job = apps.get_model("jobs", "Job")
    job.objects.exclude(status="PENDING").update(
        message_sent_at=Coalesce(F("started_at"), F("created_at"))
    )
    job.objects.filter(status__in=["DONE", "FAILED"]).update(
        terminal_published_at=Coalesce(F("finished_at"), Now())
    )


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction; the data step runs in its own.
    atomic = False

    dependencies = [("jobs", "0002_job_indexes")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="message_sent_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="terminal_published_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(existing_rows_marked, migrations.RunPython.noop, atomic=True),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(
                condition=models.Q(status="PENDING", message_sent_at__isnull=True),
                fields=["created_at"],
                name="job_unsent_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(
                condition=models.Q(
                    status__in=["DONE", "FAILED"], terminal_published_at__isnull=True
                ),
                fields=["finished_at"],
                name="job_unpublished_idx",
            ),
        ),
    ]
