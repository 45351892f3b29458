"""Bench-only app: counts every SQL statement the server process executes."""

from __future__ import annotations

from django.apps import AppConfig


class BenchHttpConfig(AppConfig):
    name = "bench.http"
    label = "bench_http"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from bench.http import sqlcount

        connection_created.connect(sqlcount.install, dispatch_uid="bench-http-sqlcount")
