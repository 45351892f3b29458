"""The index of the newest-first job list (GET /api/v1/jobs/, PROTOCOL.md §5).

The list is ``WHERE tenant_id = ? ORDER BY created_at DESC, id DESC LIMIT n`` with the cursor as
``created_at <= ?``. The seed's ``(tenant, status)`` index cannot give that order: without this
index every page reads all the tenant's rows and sorts them. On ``(tenant, created_at, id)``
PostgreSQL walks the index backwards from the cursor and stops after n rows, on any page.
Filters on a rare status still take ``(tenant, status)`` (few rows to sort); the planner
chooses by the statistics (tests/integration/lists/test_list_plans.py shows both).
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("jobs", "0003_outbox")]

    operations = [
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(
                fields=["tenant", "created_at", "id"], name="job_tenant_created_idx"
            ),
        ),
    ]
