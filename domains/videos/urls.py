from django.urls import path

from domains.videos import apis

urlpatterns = [
    path("", apis.VideoListApi.as_view(), name="video-list"),
    path("<uuid:video_id>/", apis.VideoDetailApi.as_view(), name="video-detail"),
    path("<uuid:video_id>/progress/", apis.video_progress_api, name="video-progress"),
]
