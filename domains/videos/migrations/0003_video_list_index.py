"""The index of the newest-first video list (GET /media/videos/, PROTOCOL.md §5).

As for jobs (jobs/0003_job_list_index.py): ``(tenant, created_at, id)`` gives the list's order
without a sort of the whole tenant. A session's videos are few, so ``session_id`` filters keep
the seed's ``(session_id, status)`` index and sort the handful of rows it finds.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("videos", "0002_video_indexes")]

    operations = [
        AddIndexConcurrently(
            model_name="video",
            index=models.Index(
                fields=["tenant", "created_at", "id"], name="video_tenant_created_idx"
            ),
        ),
    ]
