"""ASGI entry point: progress reads on a fast path in front of everything, other HTTP through
Django, WebSockets through the realtime core."""

import gc
import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

django_asgi_app = get_asgi_application()

# Imported after Django is set up: they import models and settings.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from project.metrics import MetricsEndpoint  # noqa: E402
from realtime.auth import TokenAuthMiddleware  # noqa: E402
from realtime.endpoint import RealtimeEndpoint  # noqa: E402
from realtime.fastpath import ProgressFastPath  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

if settings.ASGI_GC_TUNING:  # see the setting's comment
    gc.collect()
    gc.freeze()
    gc.set_threshold(*settings.ASGI_GC_THRESHOLDS)

application = ProtocolTypeRouter(
    {
        # GET /metrics (internal scrapers only) is answered before Django's middleware;
        # everything else is Django.
        "http": MetricsEndpoint(django_asgi_app),
        "websocket": TokenAuthMiddleware(URLRouter(websocket_urlpatterns)),
    }
)
# /ws/v1/ in one callable in front of that chain (realtime/endpoint.py): the same checks, the
# same consumer, four suspended frames and two scope copies fewer per connection.
application = RealtimeEndpoint(application)
# GET …/progress/ (the hottest path: every client whose socket is down polls it) is answered
# by the outermost layer, which adds no frame of its own (realtime/fastpath.py, ADR 0018).
application = ProgressFastPath(application)
