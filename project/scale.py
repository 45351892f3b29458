"""N ASGI server processes behind Debian's nginx (``least_conn``), as one host runs them.

``make demo-scale`` (``python -m project.devrun --processes N``), the scale tests
(tests/scale/) and the capacity benchmark start the web tier with this module, so all of them
run what production runs: the uvicorn command of ``infra/asgi/academy-asgi@.service``
(:func:`project.devrun.asgi_server_command`) and the proxy configuration of
``infra/proxy/nginx.conf``, rendered for plain HTTP on a chosen address with the servers as its
upstream. Nothing in the application knows how many processes there are: each one has its
own Redis subscriber connection and database pool, whatever the count.

Usage::

    with WebTier(local_upstreams(3), env=env, run_dir=tmp) as tier:
        tier.url, tier.ws_url      # through nginx
        tier.kill(0)               # SIGKILL one server; tier.start_server(0) brings it back

A server can run elsewhere than this network namespace: ``Upstream.launcher`` prefixes its
argv (``("ip", "netns", "exec", "h1")``) and ``Upstream.host`` is the address it binds.

Development and test tooling: no Django import, no settings (the environment is given).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from project import devservices
from project.devrun import asgi_server_command

PROXY_CONF = devservices.BASE_DIR / "infra" / "proxy" / "nginx.conf"
NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")
START_TIMEOUT = 60.0


class ProxyConfigChanged(RuntimeError):
    """infra/proxy/nginx.conf no longer has a line this renderer replaces."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """One ASGI server: the address it binds and how its process is started."""

    host: str
    port: int
    launcher: tuple[str, ...] = ()  # argv prefix, e.g. ("ip", "netns", "exec", "h1")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def local_upstreams(count: int, host: str = "127.0.0.1") -> list[Upstream]:
    """``count`` servers on free ports of ``host``, in this namespace."""
    if count < 1:
        raise ValueError("at least one server")
    return [Upstream(host, devservices.free_port()) for _ in range(count)]


def nginx_binary() -> str | None:
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found:
            return found
    return None


def _replace(text: str, pattern: str, replacement: str, *, flags: int = 0) -> str:
    new, count = re.subn(pattern, replacement, text, flags=flags)
    if count == 0:
        raise ProxyConfigChanged(f"infra/proxy/nginx.conf has no match for {pattern!r}")
    return new


def render_proxy_config(
    text: str, *, listen: str, upstreams: Sequence[Upstream], log_dir: Path
) -> str:
    """The shipped proxy configuration (an http-context include), for plain HTTP on ``listen``
    with ``upstreams`` as its servers and its logs under ``log_dir``; everything else as
    shipped (least_conn, the upgrade headers, timeouts, the log format without queries)."""
    servers = "".join(f"    server {upstream.address};\n" for upstream in upstreams)
    text = _replace(
        text,
        r"(upstream academy_asgi \{\n(?:.*\n)*?)((?:    server [^\n]+;\n)+)",
        lambda m: m[1] + servers,  # type: ignore[arg-type]
    )
    text = _replace(text, r"listen 443 ssl http2;", f"listen {listen};")
    text = _replace(text, r"\n\s*ssl_certificate(?:_key)?\s+[^\n]+;", "")
    return _replace(text, r"/var/log/nginx/", f"{log_dir}/")


def nginx_main_config(
    root: Path, include: Path, *, worker_processes: int = 1, worker_connections: int = 4096
) -> str:
    """A main configuration holding the include, with every path under ``root``."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = root / "temp"
    return (
        f"{user}worker_processes {worker_processes};\n"
        "daemon off;\n"
        f"pid {root}/nginx.pid;\n"
        f"worker_rlimit_nofile {max(1024, worker_connections * 2 + 64)};\n"
        f"events {{ worker_connections {worker_connections}; }}\n"
        "http {\n"
        f"    access_log {root}/logs/default_access.log;\n"
        f"    client_body_temp_path {temp}/body;\n"
        f"    proxy_temp_path {temp}/proxy;\n"
        f"    fastcgi_temp_path {temp}/fastcgi;\n"
        f"    uwsgi_temp_path {temp}/uwsgi;\n"
        f"    scgi_temp_path {temp}/scgi;\n"
        f"    include {include};\n"
        "}\n"
    )


@dataclass
class WebTier:
    """ASGI servers on ``upstreams`` and nginx in front of them on ``proxy_host:proxy_port``.

    ``env`` is every server's environment (the same for all: nothing differs per process).
    ``run_dir`` holds the nginx configuration, its logs and each server's log.
    """

    upstreams: Sequence[Upstream]
    env: Mapping[str, str]
    run_dir: Path
    proxy_host: str = "127.0.0.1"
    proxy_port: int = 0
    nginx_worker_processes: int = 1
    nginx_worker_connections: int = 4096
    servers: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.proxy_port = self.proxy_port or devservices.free_port()
        self.servers = [None] * len(self.upstreams)

    # --- addresses ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.proxy_host}:{self.proxy_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.proxy_host}:{self.proxy_port}/ws/v1/"

    def server_url(self, index: int) -> str:
        return f"http://{self.upstreams[index].address}"

    def log(self, index: int) -> Path:
        return self.run_dir / f"server-{index}.log"

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> WebTier:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for index in range(len(self.upstreams)):
            self.start_server(index, wait=False)
        for index in range(len(self.upstreams)):
            self.wait_server(index)
        self.start_proxy()
        return self

    def start_server(self, index: int, *, wait: bool = True) -> None:
        upstream = self.upstreams[index]
        argv = [*upstream.launcher, *asgi_server_command(upstream.host, upstream.port)]
        with self.log(index).open("ab") as out:
            self.servers[index] = subprocess.Popen(  # noqa: S603 - our own argv
                argv, cwd=devservices.BASE_DIR, env=dict(self.env), stdout=out, stderr=out
            )
        if wait:
            self.wait_server(index)

    def wait_server(self, index: int, timeout: float = START_TIMEOUT) -> None:
        upstream, process = self.upstreams[index], self.servers[index]
        deadline = time.monotonic() + timeout
        while not devservices.port_open(upstream.host, upstream.port):
            if process is None or process.poll() is not None:
                tail = self.log(index).read_text(errors="replace")[-2000:]
                raise RuntimeError(f"server {index} ({upstream.address}) exited:\n{tail}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server {index} ({upstream.address}) did not listen")
            time.sleep(0.1)

    def start_proxy(self) -> None:
        binary = nginx_binary()
        if binary is None:
            raise FileNotFoundError("nginx is not installed (make proxy)")
        root = self.run_dir / "nginx"
        for directory in (root / "logs", root / "temp"):
            directory.mkdir(parents=True, exist_ok=True)
        include = root / "academy.conf"
        include.write_text(
            render_proxy_config(
                PROXY_CONF.read_text(),
                listen=f"{self.proxy_host}:{self.proxy_port}",
                upstreams=self.upstreams,
                log_dir=root / "logs",
            )
        )
        main = root / "nginx.conf"
        main.write_text(
            nginx_main_config(
                root,
                include,
                worker_processes=self.nginx_worker_processes,
                worker_connections=self.nginx_worker_connections,
            )
        )
        argv = [binary, "-p", str(root), "-e", str(root / "error.log"), "-c", str(main)]
        with (root / "stdout.log").open("ab") as out:
            self.nginx = subprocess.Popen(argv, stdout=out, stderr=out)  # noqa: S603
        deadline = time.monotonic() + START_TIMEOUT
        while not devservices.port_open(self.proxy_host, self.proxy_port):
            if self.nginx.poll() is not None:
                error = (root / "error.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"nginx exited:\n{error}")
            if time.monotonic() > deadline:
                raise TimeoutError("nginx did not listen")
            time.sleep(0.05)

    def kill(self, index: int) -> None:
        """SIGKILL a server: its sockets drop without a close frame, nothing is cleaned up."""
        process = self.servers[index]
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)

    def terminate(self, index: int, timeout: float = 30) -> None:
        """SIGTERM a server (what systemd does), SIGKILL past ``timeout``."""
        devservices.stop_process(self.servers[index], timeout=timeout)

    def alive(self) -> list[bool]:
        return [process is not None and process.poll() is None for process in self.servers]

    def pids(self) -> list[int | None]:
        return [None if process is None else process.pid for process in self.servers]

    def stop(self) -> None:
        devservices.stop_process(self.nginx, timeout=10)
        for process in self.servers:
            devservices.stop_process(process, timeout=10)

    def __enter__(self) -> WebTier:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
