from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VideosConfig(AppConfig):
    name = "domains.videos"
    label = "videos"
    verbose_name = _("Videos")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The push core rebuilds a video topic Redis lost from this app's record.
        from domains.videos import services
        from realtime import rebuild
        from realtime.keys import TopicKind

        rebuild.register(TopicKind.VIDEO, services.video_state_from_record)
        # An encode job cancelled before its worker reached the video cancels the video.
        from domains.jobs import hooks
        from domains.videos.payloads import VIDEO_ENCODE

        hooks.register_cancelled_unrun(VIDEO_ENCODE, services.video_encode_cancelled_unrun)
