"""ASGI entry point: HTTP through Django; WebSockets are routed by the realtime core."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402 - after Django is set up

application = ProtocolTypeRouter({"http": django_asgi_app})
