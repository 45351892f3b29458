"""Bench-only settings: the project's settings, the bench urlconf and the SQL counter app.

Used by the server processes that ``python -m bench.http.run`` starts; never by production.
"""

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench.http.apps.BenchHttpConfig"]
ROOT_URLCONF = "bench.http.urls"
