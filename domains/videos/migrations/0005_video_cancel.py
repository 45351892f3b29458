"""Cancel (PROTOCOL.md §2, §5): the CANCELLED status and the ``cancel_requested`` flag.

The flag has a database default, so rows written while the migration runs (and the raw inserts
of bench/ and the EXPLAIN tests) read False; adding it rewrites nothing (PostgreSQL 11+).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("videos", "0004_video_upload_fields")]

    operations = [
        migrations.AddField(
            model_name="video",
            name="cancel_requested",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AlterField(
            model_name="video",
            name="status",
            field=models.CharField(
                choices=[
                    ("PENDING_UPLOAD", "Waiting for upload"),
                    ("UPLOADED", "Uploaded"),
                    ("PROCESSING", "Processing"),
                    ("READY", "Ready"),
                    ("FAILED", "Failed"),
                    ("CANCELLED", "Cancelled"),
                ],
                default="PENDING_UPLOAD",
                max_length=16,
            ),
        ),
    ]
