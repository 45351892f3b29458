from django.urls import path

from domains.jobs import apis

urlpatterns = [
    path("", apis.JobCollectionApi.as_view(), name="job-create"),
    path("<uuid:job_id>/", apis.JobDetailApi.as_view(), name="job-detail"),
    path("<uuid:job_id>/progress/", apis.job_progress_api, name="job-progress"),
    path("<uuid:job_id>/cancel/", apis.JobCancelApi.as_view(), name="job-cancel"),
    path("<uuid:job_id>/failures.xlsx", apis.JobFailuresApi.as_view(), name="job-failures"),
]
