"""The schema, its docs page and its assets, and the JSON answer of unknown API paths.

``/api/docs/`` is Swagger UI from drf-spectacular-sidecar (a pinned dependency), served by this
process at ``/api/docs/assets/``: the page needs no other host, works without internet and
under a CSP that allows only ``'self'`` (the split view loads its init script from a URL, not
inline). Everything under ``/api/`` and ``/media/`` answers the error shape of PROTOCOL.md §5,
DEBUG included: unknown paths get :func:`not_found` (Django's technical 404 page never shows
there), and these views answer their errors (405, 404) in JSON whatever they render otherwise.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

import drf_spectacular_sidecar
from django.http import FileResponse, HttpRequest, HttpResponseBase, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from domains.common.errors import NotFound
from realtime.protocol import error_body

SWAGGER_UI_DIR = (
    Path(drf_spectacular_sidecar.__file__).resolve().parent
    / "static"
    / "drf_spectacular_sidecar"
    / "swagger-ui-dist"
)
ASSETS = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-32x32.png",
    }
)
ASSET_MAX_AGE = 86_400


class JsonErrors(APIView):
    """For views that render HTML or YAML: their errors are the JSON error shape."""

    def handle_exception(self, exc: Exception) -> Response:
        # finalize_response renders with the request's renderer: make it JSON for errors.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)


class SchemaView(JsonErrors, SpectacularAPIView):
    pass


class DocsView(JsonErrors, SpectacularSwaggerSplitView):
    pass


def _method_not_allowed(allowed: str) -> JsonResponse:
    response = JsonResponse(error_body("method_not_allowed", _("Method not allowed.")), status=405)
    response["Allow"] = allowed
    return response


@csrf_exempt  # any method gets the 404 (no cookies are read), not a CSRF page
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    return JsonResponse(error_body(NotFound.code, NotFound.default_detail), status=404)


@csrf_exempt
def docs_asset(request: HttpRequest, name: str) -> HttpResponseBase:
    """One of Swagger UI's files, from the installed sidecar package."""
    if name not in ASSETS:
        return not_found(request)
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed("GET, HEAD")
    content_type, _encoding = mimetypes.guess_type(name)
    response = FileResponse(
        (SWAGGER_UI_DIR / name).open("rb"), content_type=content_type or "application/octet-stream"
    )
    response["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE}"
    return response
