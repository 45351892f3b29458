"""Settings for the stock Channels baselines: the project's settings with a stock layer.

``BENCH_STOCK_LAYER`` picks ``core`` (``channels_redis.core.RedisChannelLayer``) or ``pubsub``
(``channels_redis.pubsub.RedisPubSubChannelLayer``), both configured as their documentation
shows (a host URL and a prefix), nothing tuned. Bench-only: production never loads this.
"""

from __future__ import annotations

import os

from project.settings import *  # noqa: F403
from project.settings import REDIS_URL

_LAYER = os.environ.get("BENCH_STOCK_LAYER", "pubsub")
_BACKENDS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": _BACKENDS[_LAYER],
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"benchstock{_LAYER}"},
    }
}
ASGI_APPLICATION = "bench.ws.stock_asgi.application"
