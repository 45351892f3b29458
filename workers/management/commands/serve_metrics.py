"""``python manage.py serve_metrics [--bind 127.0.0.1] [--port 9101]``

Serves ``GET /metrics`` for a host that runs workers but no ASGI server: the exposition of
every process writing to this host's ``PROMETHEUS_MULTIPROC_DIR`` (realtime/prometheus.py).
On a host with an ASGI server, its own ``/metrics`` shows the same (project/metrics.py). Bind
it to an address only the host's agent or the internal network reaches; runs until SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from realtime import prometheus


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404)
            return
        body = prometheus.exposition()
        self.send_response(200)
        self.send_header("Content-Type", prometheus.CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not worth a line
        pass


class Command(BaseCommand):
    help = "Serve this host's Prometheus metrics (workers' hosts)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=9101, help="port to listen on")

    def handle(self, *args: Any, **options: Any) -> None:
        server = ThreadingHTTPServer((options["bind"], options["port"]), _Handler)

        def stop(signum: int, frame: FrameType | None) -> None:
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"metrics on http://{options['bind']}:{options['port']}/metrics")
        self.stdout.flush()
        server.serve_forever()
        server.server_close()
