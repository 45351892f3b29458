from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JobsConfig(AppConfig):
    name = "domains.jobs"
    label = "jobs"
    verbose_name = _("Jobs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from domains.jobs.services import job_record
        from realtime.keys import TopicKind
        from realtime.records import record_lookup_register

        record_lookup_register(TopicKind.JOB, job_record)
