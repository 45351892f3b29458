"""Cancel (PROTOCOL.md §2, §5): the CANCELLED status, the ``cancel_requested`` flag, and the
relay's partial index of unpublished terminal states widened to CANCELLED jobs.

The flag has a database default, so rows written while the migration runs (and raw inserts)
read False. The index is swapped concurrently, so the table is never locked for writes: the new
one is built under a temporary name, then the old one is dropped and the new one renamed.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("jobs", "0004_job_list_index")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="cancel_requested",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AlterField(
            model_name="job",
            name="status",
            field=models.CharField(
                choices=[
                    ("PENDING", "Pending"),
                    ("PROCESSING", "Processing"),
                    ("DONE", "Done"),
                    ("FAILED", "Failed"),
                    ("CANCELLED", "Cancelled"),
                ],
                default="PENDING",
                max_length=16,
            ),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(
                condition=models.Q(
                    status__in=["DONE", "FAILED", "CANCELLED"], terminal_published_at__isnull=True
                ),
                fields=["finished_at"],
                name="job_unpublished2_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="job", name="job_unpublished_idx"),
        migrations.RenameIndex(
            model_name="job", new_name="job_unpublished_idx", old_name="job_unpublished2_idx"
        ),
    ]
