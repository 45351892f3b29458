"""``make demo``: resolve or start services, migrate, seed, serve. Ctrl-C stops it all.

Run as ``python -m project.devrun``. Everything it starts (embedded PostgreSQL/Redis, moto's
server, the ASGI server and workers) is stopped again on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

from project import devservices

HOST, PORT = "127.0.0.1", 8000
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


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], check=True, cwd=devservices.BASE_DIR)


def _banner(services: devservices.Services) -> str:
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
        f"  WebSocket      ws://{HOST}:{PORT}/ws/v1/",
        f"  Health         {base}/health/ready/",
        f"  Admin          {base}/admin/",
        f"  Database       {services.env['DATABASE_URL']}",
        f"  Redis          {services.env['REDIS_URL']}",
        f"  SQS/S3 (moto)  {services.env.get('AWS_ENDPOINT_URL', '-')}",
        f"  Embedded       {started}",
        f"  Workers        {', '.join(WORKER_KINDS)} (manage.py run_worker --queue <kind>); "
        f"emails go to {DEMO_WORKER_ENV['EMAIL_FILE_PATH']}",
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


def main() -> int:
    if devservices.port_open(HOST, PORT):
        print(f"Port {PORT} on {HOST} is already in use; stop what runs there first.")
        return 1
    services = devservices.ensure_services(with_moto=True)
    os.environ.update(services.env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    children: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        _manage("migrate", "--noinput")
        _manage("seed_demo")
        _manage("create_queues")
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "project.daphne_server",
                    "-b",
                    HOST,
                    "-p",
                    str(PORT),
                    "project.asgi:application",
                ],
                cwd=devservices.BASE_DIR,
            )
        )
        worker_env = {**os.environ}
        for name, value in DEMO_WORKER_ENV.items():
            worker_env.setdefault(name, value)
        for kind in WORKER_KINDS:
            children.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "run_worker", "--queue", kind],
                    cwd=devservices.BASE_DIR,
                    env=worker_env,
                )
            )
        import django

        django.setup()
        print(_banner(services), flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("A server process exited; stopping.")
        return 1
    except KeyboardInterrupt:
        print("\nStopping...")
        return 0
    finally:
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
