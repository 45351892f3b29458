"""The partial indexes on the import's match key, built without locking out writes.

CREATE INDEX CONCURRENTLY cannot run inside a transaction, hence ``atomic = False``. Django's
``AddIndexConcurrently`` builds plain indexes only, so the unique one (active students) is the
same SQL Django would emit for the conditional ``UniqueConstraint``, run CONCURRENTLY, with the
constraint added to the migration state separately. A concurrent build that fails leaves an
INVALID index behind: drop it and migrate again (IF NOT EXISTS would otherwise keep it).
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("students", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="student",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(deleted_at__isnull=True),
                        fields=("tenant", "name", "parent_phone"),
                        name="students_active_key_uniq",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=(
                        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS students_active_key_uniq "
                        "ON students_student (tenant_id, name, parent_phone) "
                        "WHERE deleted_at IS NULL"
                    ),
                    reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS students_active_key_uniq",
                ),
            ],
        ),
        AddIndexConcurrently(
            model_name="student",
            index=models.Index(
                condition=models.Q(deleted_at__isnull=False),
                fields=["tenant", "name", "parent_phone"],
                name="students_deleted_key_idx",
            ),
        ),
    ]
