from django.urls import path

from domains.videos import apis

urlpatterns = [
    path("", apis.VideoCollectionApi.as_view(), name="video-list"),
    path("<uuid:video_id>/", apis.VideoDetailApi.as_view(), name="video-detail"),
    path(
        "<uuid:video_id>/complete-upload/",
        apis.VideoCompleteUploadApi.as_view(),
        name="video-complete-upload",
    ),
    path("<uuid:video_id>/progress/", apis.video_progress_api, name="video-progress"),
    path("<uuid:video_id>/cancel/", apis.VideoCancelApi.as_view(), name="video-cancel"),
    path("<uuid:video_id>/playlist.m3u8", apis.VideoPlaylistApi.as_view(), name="video-playlist"),
    path(
        "<uuid:video_id>/hls/<str:rung>/index.m3u8",
        apis.VideoVariantPlaylistApi.as_view(),
        name="video-variant",
    ),
]
