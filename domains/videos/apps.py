from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VideosConfig(AppConfig):
    name = "domains.videos"
    label = "videos"
    verbose_name = _("Videos")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from domains.videos.services import video_record
        from realtime.keys import TopicKind
        from realtime.records import record_lookup_register

        record_lookup_register(TopicKind.VIDEO, video_record)
