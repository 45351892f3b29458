"""ASGI entry point: HTTP through Django, WebSockets through the realtime core."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

django_asgi_app = get_asgi_application()

# Imported after Django is set up: they import models and settings.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from realtime.auth import TokenAuthMiddleware  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": TokenAuthMiddleware(URLRouter(websocket_urlpatterns)),
    }
)
