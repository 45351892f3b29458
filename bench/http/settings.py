"""Bench-only settings: the project's settings, the bench urlconf and the SQL counter app.

Used by the server processes that ``python -m bench.http.run`` starts; never by production.
``BENCH_HTTP_MIDDLEWARE=lean`` keeps only the async-native request-id middleware, to measure
what the project's (sync, thread-hopping) middleware stack costs every request.
"""

import os

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [*INSTALLED_APPS, "bench.http.apps.BenchHttpConfig"]
ROOT_URLCONF = "bench.http.urls"
if os.environ.get("BENCH_HTTP_MIDDLEWARE") == "lean":
    MIDDLEWARE = [m for m in MIDDLEWARE if m == "django_guid.middleware.guid_middleware"]
