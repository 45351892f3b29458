"""A private redis-server for tests that change its configuration (maxmemory, policies).

Debian's /usr/bin/redis-server on a free port, no persistence, stopped when the block ends.
The project's store is pointed at it through ``REDIS_URL`` and its cached clients are reset on
the way in and out, so the code under test is the real store talking to a real Redis.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from django.test import override_settings

from project import devservices
from realtime import clients

REDIS_SERVER = "/usr/bin/redis-server"


@dataclass
class PrivateRedis:
    url: str
    client: redis.Redis

    def info(self, section: str) -> dict[str, object]:
        return dict(self.client.info(section))


@contextmanager
def private_redis(*config: str) -> Iterator[PrivateRedis]:
    """Run ``redis-server --port <free> --save '' *config`` and point the store at it."""
    if shutil.which(REDIS_SERVER) is None:
        raise RuntimeError(f"{REDIS_SERVER} is needed: apt-get install redis-server")
    port = devservices.free_port()
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", *config],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        with override_settings(REDIS_URL=url):
            clients.reset_clients()
            try:
                yield PrivateRedis(url=url, client=client)
            finally:
                clients.reset_clients()
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)
