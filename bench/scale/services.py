"""Private services and process plumbing for the scale benchmark (no Django).

The run owns its PostgreSQL, Redis and moto server: Redis INFO (CPU, ops/s, memory) and
``pg_stat_activity`` then show this run only, on a machine where other engineers run tests
against the shared servers, and the run's 60-odd database connections cannot starve theirs.

- PostgreSQL: Debian's server binaries (``initdb``/``pg_ctl`` of the installed major
  version), a throw-away cluster on a free port, ``max_connections`` 100 (PostgreSQL's and a
  small RDS instance's order of magnitude). As root the cluster runs as ``postgres``.
- Redis: ``redis-server infra/redis/redis.conf`` (the production settings: maxmemory,
  volatile-lru, AOF everysec, pub/sub buffer limits, maxclients) on a free port.
- moto's server (SQS and S3 over HTTP) as a process of its own, so its CPU is its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(
    port: int, *, process: subprocess.Popen[bytes] | None, timeout: float, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.3):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process on port {port} exited; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s; see {log}")
        time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def raise_open_files() -> int:
    """Lift the soft limit on open files to the hard one; the new soft limit."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class Managed:
    """A child process with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Services:
    """What the run started; ``stop()`` ends all of it, newest first."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: list[Managed] = field(default_factory=list)
    _cleanups: list[object] = field(default_factory=list)

    def spawn(
        self, name: str, argv: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> Managed:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env={**os.environ, **self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        managed = Managed(name, process, log)
        self.processes.append(managed)
        return managed

    def stop(self) -> None:
        for managed in reversed(self.processes):
            with contextlib.suppress(Exception):
                managed.stop()
        for cleanup in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                cleanup()  # type: ignore[operator]


def _pg_bin() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")


def start_postgres(services: Services, *, max_connections: int = 100) -> str:
    """A private PostgreSQL cluster; its URL (database ``academy_scale``)."""
    pg_bin = _pg_bin()
    home = services.workdir / "pg"
    home.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        services.workdir.chmod(0o755)  # mkdtemp's 0700 keeps the postgres user out
        shutil.chown(home, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = home / "data"
    subprocess.run(
        [
            *as_user,
            str(pg_bin / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = (
        f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c max_connections={max_connections}"
        " -c shared_buffers=128MB -c log_min_messages=warning"
    )
    subprocess.run(
        [
            *as_user,
            str(pg_bin / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(home / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )

    def stop() -> None:
        subprocess.run(
            [*as_user, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            check=False,
            capture_output=True,
        )

    services._cleanups.append(stop)
    subprocess.run(
        [
            str(pg_bin / "psql") if (pg_bin / "psql").exists() else "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-qc",
            "CREATE DATABASE academy_scale",
        ],
        check=True,
        capture_output=True,
    )
    return f"postgres://postgres@127.0.0.1:{port}/academy_scale"


def start_redis(services: Services) -> tuple[str, Managed]:
    """``redis-server`` with the production config on a free port; URL and process."""
    port = free_port()
    data = services.workdir / "redis"
    data.mkdir()
    managed = services.spawn(
        "redis",
        [
            "redis-server",
            str(ROOT / "infra" / "redis" / "redis.conf"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ],
    )
    wait_port(port, process=managed.process, timeout=10, log=managed.log)
    return f"redis://127.0.0.1:{port}/0", managed


def start_moto(services: Services) -> tuple[str, Managed]:
    port = free_port()
    managed = services.spawn(
        "moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    )
    wait_port(port, process=managed.process, timeout=30, log=managed.log)
    return f"http://127.0.0.1:{port}", managed
