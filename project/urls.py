from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from project import demo, health

urlpatterns = [
    path("health/", health.health, name="health"),
    path("health/ready/", health.ready, name="health-ready"),
    path("api/v1/auth/", include("domains.tenants.urls")),
    path("api/v1/jobs/", include("domains.jobs.urls")),
    path("media/videos/", include("domains.videos.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]

if settings.DEMO_ENABLED:
    urlpatterns += demo.urlpatterns

handler404 = "project.api.exception_handlers.handler404"
handler500 = "project.api.exception_handlers.handler500"
