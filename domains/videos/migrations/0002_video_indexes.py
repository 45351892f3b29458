"""The seed's indexes, built without locking writes (CREATE INDEX CONCURRENTLY)."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("videos", "0001_initial")]

    operations = [
        AddIndexConcurrently(
            model_name="video",
            index=models.Index(fields=["tenant", "status"], name="video_tenant_status_idx"),
        ),
        AddIndexConcurrently(
            model_name="video",
            index=models.Index(fields=["session_id", "status"], name="video_session_status_idx"),
        ),
    ]
