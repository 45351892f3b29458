"""``make demo``: resolve or start services, migrate, seed, serve. Ctrl-C stops it all.

Run as ``python -m project.devrun``. Everything it starts (embedded PostgreSQL/Redis, moto's
server, the ASGI server, workers and the outbox relay) is stopped again on Ctrl-C or SIGTERM.

``--processes N`` (``make demo-scale``, N ≥ 2) serves the app as production's web tier does: N
uvicorn processes on free ports behind Debian's nginx on :8000 (``infra/proxy/nginx.conf``,
``least_conn``; ``project/scale.py``). Every process of the demo then writes its metrics to one
``PROMETHEUS_MULTIPROC_DIR`` (``.run/metrics``, emptied at start), and any server's
``/metrics`` shows them all.

The ASGI server is the one production runs: uvicorn with the sans-I/O websockets protocol,
uvloop, httptools and per-message deflate off, with the flags of
``infra/asgi/academy-asgi@.service`` (docs/adr/0009-demo-runs-the-production-asgi-server.md).
``ACADEMY_ASGI_SERVER=daphne`` serves with daphne instead. The end-to-end tests start their
server with :func:`asgi_server_command` too, so they test what production runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from types import FrameType

from project import devservices

HOST, PORT = "127.0.0.1", 8000
ASGI_APP = "project.asgi:application"
# Which ASGI server serves the app: "uvicorn" (default, as in production) or "daphne".
ASGI_SERVER_ENV = "ACADEMY_ASGI_SERVER"
ASGI_SERVERS = ("uvicorn", "daphne")
# Seconds uvicorn gives open requests and sockets on Ctrl-C (production: 25); below the 10 s
# that main() waits for its children before killing them.
DEV_GRACEFUL_SHUTDOWN = 5
# The largest WebSocket message the server itself buffers (bytes): a little above the
# application's REALTIME_MAX_FRAME_BYTES (4,096), so that a frame just over that limit still
# reaches the consumer, which closes with 4008, while nothing near uvicorn's 16 MiB or
# daphne's 1 MiB default is ever read into memory (audit F8). The production unit says the
# same (tests/unit/test_devrun.py).
WS_MAX_SIZE = 5120
WORKER_KINDS = ("ai", "video", "messaging")
# Demo workers write emails to files and pace batches, so a job's progress is visible live.
DEMO_WORKER_ENV = {
    "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
    "EMAIL_FILE_PATH": str(devservices.RUN_DIR / "emails"),
    "MESSAGING_BATCH_SIZE": "10",
    "MESSAGING_SEND_INTERVAL": "0.5",
    # Ctrl-C waits for a worker's in-flight long poll and running jobs; keep both short here.
    "SQS_WAIT_TIME_SECONDS": "5",
    "WORKER_SHUTDOWN_GRACE": "8",
}


class UnknownServer(ValueError):
    """``ACADEMY_ASGI_SERVER`` names no server this runner knows."""


def asgi_server_name(environ: Mapping[str, str] = os.environ) -> str:
    """The server chosen by ``ACADEMY_ASGI_SERVER`` (unset or empty: uvicorn)."""
    name = environ.get(ASGI_SERVER_ENV, "").strip().lower() or "uvicorn"
    if name not in ASGI_SERVERS:
        raise UnknownServer(f"{ASGI_SERVER_ENV}={name!r} is not one of {', '.join(ASGI_SERVERS)}.")
    return name


def asgi_server_command(host: str, port: int, *, server: str | None = None) -> list[str]:
    """The argv that serves ``project.asgi`` on ``host:port``.

    ``uvicorn`` mirrors ``infra/asgi/academy-asgi@.service`` (tests/unit/test_devrun.py keeps
    them in step) except where production differs on purpose: no ``--proxy-headers`` (no proxy
    runs in front in development) and a shorter graceful shutdown. ``server`` defaults to
    :func:`asgi_server_name`.
    """
    name = server or asgi_server_name()
    if name == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            ASGI_APP,
            "--host",
            host,
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--ws",
            "websockets-sansio",
            "--ws-per-message-deflate",
            "false",
            "--ws-ping-interval",
            "20",
            "--ws-ping-timeout",
            "20",
            "--ws-max-size",
            str(WS_MAX_SIZE),
            "--no-access-log",
            "--lifespan",
            "off",
            "--timeout-graceful-shutdown",
            str(DEV_GRACEFUL_SHUTDOWN),
        ]
    if name == "daphne":
        return [
            sys.executable,
            "-m",
            "project.daphne_server",
            "-b",
            host,
            "-p",
            str(port),
            "--websocket-max-message-size",
            str(WS_MAX_SIZE),
            "--websocket-max-frame-size",
            str(WS_MAX_SIZE),
            ASGI_APP,
        ]
    raise UnknownServer(f"unknown ASGI server {name!r}; one of {', '.join(ASGI_SERVERS)}")


def background_commands() -> list[list[str]]:
    """What runs beside the ASGI server: one worker per kind, and the outbox relay, which sends
    what a request could not queue and republishes lost terminal states (ADR 0011; in
    production infra/relay/academy-relay.service)."""
    manage = [sys.executable, "manage.py"]
    workers = [[*manage, "run_worker", "--queue", kind] for kind in WORKER_KINDS]
    return [*workers, [*manage, "relay_outbox"]]


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], check=True, cwd=devservices.BASE_DIR)


def _banner(services: devservices.Services, server: str) -> str:
    from domains.tenants.management.commands.seed_demo import (
        DEMO_PASSWORD,
        DEMO_ROLES,
        DEMO_TENANTS,
    )

    base = f"http://{HOST}:{PORT}"
    started = ", ".join(services.started) or "none (using services already running)"
    lines = [
        "",
        "academy-realtime is running",
        f"  API            {base}/api/v1/",
        f"  API docs       {base}/api/docs/",
        f"  Demo pages     {base}/demo/ (jobs), {base}/demo/video/ (video upload and playback)",
        f"  WebSocket      ws://{HOST}:{PORT}/ws/v1/",
        f"  Demo           {base}/demo/ (one job), {base}/demo/dashboard/ (the tenant's jobs "
        "and videos on one socket)",
        f"  Health         {base}/health/ready/",
        f"  Admin          {base}/admin/",
        f"  ASGI server    {server} ({ASGI_SERVER_ENV}=daphne|uvicorn to choose)",
        f"  Database       {services.env['DATABASE_URL']}",
        f"  Redis          {services.env['REDIS_URL']}",
        f"  SQS/S3 (moto)  {services.env.get('AWS_ENDPOINT_URL', '-')}",
        f"  Embedded       {started}",
        f"  Workers        {', '.join(WORKER_KINDS)} (manage.py run_worker --queue <kind>); "
        f"emails go to {DEMO_WORKER_ENV['EMAIL_FILE_PATH']}",
        "  Outbox relay   manage.py relay_outbox (sends what the queue missed)",
        "Try a job (in another terminal):",
        "  python manage.py demo_job --tenant alpha --user alpha-staff --watch",
        "  python manage.py watch_job <job_id> --tenant alpha --user alpha-staff",
        "Demo logins (password " + DEMO_PASSWORD + "):",
    ]
    lines += [
        f"  tenant {code:<6} " + ", ".join(f"{code}-{role.value}" for role in DEMO_ROLES)
        for code in DEMO_TENANTS
    ]
    lines += ["Press Ctrl-C to stop.", ""]
    return "\n".join(lines)


def _sample_lecture() -> None:
    """The video page's sample lecture, made once into the demo's cache directory."""
    from project import demo_video

    try:
        sample = demo_video.sample_lecture_ensure()
    except demo_video.SampleUnavailable as exc:
        print(f"The video page's sample lecture is not available: {exc}")
    else:
        print(f"Sample lecture for the video page: {sample}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m project.devrun")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="ASGI server processes; 2 or more run behind nginx on :8000 (make demo-scale)",
    )
    processes = parser.parse_args(argv).processes
    from project import scale  # it imports this module (the server command)

    if processes < 1:
        print("--processes must be at least 1.")
        return 1
    try:
        server = asgi_server_name()
    except UnknownServer as exc:
        print(exc)
        return 1
    if processes > 1 and server != "uvicorn":
        print("--processes runs the production server, uvicorn; unset ACADEMY_ASGI_SERVER.")
        return 1
    if devservices.port_open(HOST, PORT):
        print(f"Port {PORT} on {HOST} is already in use; stop what runs there first.")
        return 1
    services = devservices.ensure_services(with_moto=True)
    os.environ.update(services.env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    children: list[subprocess.Popen[bytes]] = []
    tier: scale.WebTier | None = None
    if processes > 1:
        metrics_dir = devservices.RUN_DIR / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        _manage("migrate", "--noinput")
        _manage("seed_demo")
        _manage("create_queues")
        _sample_lecture()
        if processes > 1:
            tier = scale.WebTier(
                scale.local_upstreams(processes, HOST),
                env=dict(os.environ),
                run_dir=devservices.RUN_DIR / "scale",
                proxy_host=HOST,
                proxy_port=PORT,
            ).start()
        else:
            children.append(
                subprocess.Popen(
                    asgi_server_command(HOST, PORT, server=server), cwd=devservices.BASE_DIR
                )
            )
        worker_env = {**os.environ}
        for name, value in DEMO_WORKER_ENV.items():
            worker_env.setdefault(name, value)
        for argv in background_commands():
            children.append(subprocess.Popen(argv, cwd=devservices.BASE_DIR, env=worker_env))
        import django

        django.setup()
        print(_banner(services, server), flush=True)
        if tier is not None:
            servers = ", ".join(upstream.address for upstream in tier.upstreams)
            print(f"  {processes} ASGI processes ({servers}) behind nginx on :{PORT};", flush=True)
            print(f"  metrics of all: {tier.server_url(0)}/metrics; logs in {tier.run_dir}")
        while all(child.poll() is None for child in children) and (
            tier is None or all(tier.alive())
        ):
            time.sleep(0.5)
        print("A server process exited; stopping.")
        return 1
    except KeyboardInterrupt:
        print("\nStopping...")
        return 0
    finally:
        if tier is not None:
            tier.stop()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        services.stop()


if __name__ == "__main__":
    sys.exit(main())
