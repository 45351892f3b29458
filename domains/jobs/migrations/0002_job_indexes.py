"""The seed's indexes, built without locking writes (CREATE INDEX CONCURRENTLY)."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("jobs", "0001_initial")]

    operations = [
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(fields=["tenant", "status"], name="job_tenant_status_idx"),
        ),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(fields=["tenant", "job_id"], name="job_tenant_jobid_idx"),
        ),
    ]
