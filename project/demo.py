"""Serves the demo page and the built client library (``make demo`` only, never in prod).

The page lives in ``frontend-client/demo/``; the library is ``frontend-client/dist/``, built
by ``npm run build`` (``make demo`` and ``make test`` build it).
"""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.urls import path, re_path
from django.views.static import serve

CLIENT_DIR = settings.BASE_DIR / "frontend-client"
DEMO_DIR = CLIENT_DIR / "demo"
DIST_DIR = CLIENT_DIR / "dist"


def demo_page(request: HttpRequest) -> FileResponse:
    return FileResponse((DEMO_DIR / "index.html").open("rb"), content_type="text/html")


def demo_client(request: HttpRequest, path: str) -> HttpResponse:
    if not (DIST_DIR / "index.js").exists():
        raise Http404("The client library is not built: run `npm run build` in frontend-client/.")
    return serve(request, path, document_root=DIST_DIR)


urlpatterns = [
    path("demo/", demo_page, name="demo"),
    re_path(r"^demo/client/(?P<path>.+)$", demo_client),
    re_path(r"^demo/(?P<path>demo\.(?:js|css))$", serve, {"document_root": DEMO_DIR}),
]
