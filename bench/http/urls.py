"""The project's URLs plus the benchmark's baselines (bench settings only)."""

from django.urls import path

from bench.http import views
from project.urls import handler404, handler500
from project.urls import urlpatterns as project_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("bench/noop/", views.noop_api, name="bench-noop"),
    path("bench/noop-noauth/", views.noop_noauth_api, name="bench-noop-noauth"),
    path("bench/sql/", views.sql_count_api, name="bench-sql"),
    *project_urlpatterns,
]
