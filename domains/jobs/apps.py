from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JobsConfig(AppConfig):
    name = "domains.jobs"
    label = "jobs"
    verbose_name = _("Jobs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The push core rebuilds a job topic Redis lost from this app's record.
        from domains.jobs import services
        from realtime import rebuild
        from realtime.keys import TopicKind

        rebuild.register(TopicKind.JOB, services.job_state_from_record)
