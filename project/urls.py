from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from project import demo, demo_video, health
from project.api import docs

urlpatterns = [
    path("health/", health.health, name="health"),
    path("health/ready/", health.ready, name="health-ready"),
    path("api/v1/auth/", include("domains.tenants.urls")),
    path("api/v1/jobs/", include("domains.jobs.urls")),
    path("media/videos/", include("domains.videos.urls")),
    path("api/schema/", docs.SchemaView.as_view(), name="schema"),
    path("api/docs/", docs.DocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/docs/assets/<str:name>", docs.docs_asset, name="api-docs-asset"),
    # Last of the API routes: any other path under /api/ or /media/ is a JSON 404.
    re_path(r"^(?:api|media)/", docs.not_found),
    path("admin/", admin.site.urls),
]

if settings.DEMO_ENABLED:
    urlpatterns += demo.urlpatterns + demo_video.urlpatterns

handler404 = "project.api.exception_handlers.handler404"
handler500 = "project.api.exception_handlers.handler500"
