"""The shipped proxy configuration under Debian's nginx (audit F10): ``nginx -t`` accepts it,
and a real nginx running it in front of a tiny upstream writes no token to any log.

The configuration is an http-context include; a wrapper gives it an ``http {}`` block, and its
absolute paths (logs, TLS files) and ports are moved under the test's temporary directory.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from project import devservices

CONF = Path(__file__).resolve().parents[2] / "infra" / "proxy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SECRET = "eyJzZWNyZXQiOiJub3QtaW4tbmdpbngifQ.c2lnbmF0dXJl.TkdJTlhTRUNSRVQ"

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists(), reason="Debian's nginx is not installed (make proxy)"
)


@dataclass
class Proxy:
    root: Path
    port: int
    upstream_port: int

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def nginx(self, *args: str) -> list[str]:
        error_log, conf = self.root / "error.log", self.root / "nginx.conf"
        return [NGINX, "-p", str(self.root), "-e", str(error_log), "-c", str(conf), *args]


def render(root: Path, *, port: int, upstream_port: int) -> Proxy:
    """The shipped file with paths under ``root``, inside a minimal main configuration."""
    tls = root / "tls"
    for directory in (tls, root / "logs", root / "temp"):
        directory.mkdir(parents=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(tls / "privkey.pem"),
            "-out",
            str(tls / "fullchain.pem"),
        ],
        check=True,
        capture_output=True,
    )
    text = CONF.read_text()
    for shipped, here in (
        ("/var/log/nginx/", f"{root}/logs/"),
        ("/etc/academy-realtime/tls/", f"{tls}/"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;"),
        ("server 127.0.0.1:8001;", f"server 127.0.0.1:{upstream_port};"),
        ("server 127.0.0.1:8002;", f"server 127.0.0.1:{upstream_port};"),
    ):
        assert shipped in text, shipped
        text = text.replace(shipped, here)
    (root / "academy.conf").write_text(text)
    temp = root / "temp"
    (root / "nginx.conf").write_text(
        f"""
        user root;
        worker_processes 1;
        daemon off;
        pid {root}/nginx.pid;
        events {{ worker_connections 64; }}
        http {{
            access_log {root}/logs/default_access.log;
            client_body_temp_path {temp}/body;
            proxy_temp_path {temp}/proxy;
            fastcgi_temp_path {temp}/fastcgi;
            uwsgi_temp_path {temp}/uwsgi;
            scgi_temp_path {temp}/scgi;
            include {root}/academy.conf;
        }}
        """
    )
    return Proxy(root=root, port=port, upstream_port=upstream_port)


class Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:  # the test's own server: quiet
        pass


@pytest.fixture
def proxy(tmp_path: Path) -> Proxy:
    return render(tmp_path, port=devservices.free_port(), upstream_port=devservices.free_port())


@pytest.fixture
def upstream(proxy: Proxy) -> Iterator[None]:
    server = ThreadingHTTPServer(("127.0.0.1", proxy.upstream_port), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield
    server.shutdown()
    server.server_close()


def test_F10_the_shipped_proxy_config_passes_nginx_t(proxy: Proxy) -> None:
    # given the shipped nginx configuration (fixture)
    # when
    result = subprocess.run(proxy.nginx("-t"), capture_output=True, text=True, check=False)

    # then
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.slow
def test_F10_nginx_writes_no_token_to_its_logs(proxy: Proxy, upstream: None) -> None:
    # given nginx running the shipped configuration in front of an upstream
    process = subprocess.Popen(proxy.nginx(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not devservices.port_open("127.0.0.1", proxy.port):
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)

        # when requests carry a token in the query string, on the socket path and elsewhere
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        for path in ("/ws/v1/", "/api/v1/jobs/"):
            url = f"https://127.0.0.1:{proxy.port}{path}?token={SECRET}&x=1"
            with urllib.request.urlopen(url, context=context, timeout=10) as response:
                assert response.read() == b"ok"
    finally:
        devservices.stop_process(process)

    # then both were logged, by path only
    ws_log = (proxy.logs / "academy_ws.log").read_text()
    access_log = (proxy.logs / "academy_access.log").read_text()
    assert "GET /ws/v1/ " in ws_log
    assert "GET /api/v1/jobs/ " in access_log
    for log in [*proxy.logs.iterdir(), proxy.root / "error.log"]:
        if log.exists():
            assert SECRET not in log.read_text(), log
            assert "token=" not in log.read_text(), log


def test_the_scale_launcher_renders_the_shipped_config_for_n_servers_and_nginx_accepts_it(
    tmp_path: Path,
) -> None:
    # given the shipped configuration rendered by project/scale.py for three servers
    from project import scale

    upstreams = [scale.Upstream("127.0.0.1", port) for port in (18001, 18002, 18003)]
    root = tmp_path / "nginx"
    (root / "logs").mkdir(parents=True)
    (root / "temp").mkdir()
    include = root / "academy.conf"
    include.write_text(
        scale.render_proxy_config(
            CONF.read_text(), listen="127.0.0.1:18080", upstreams=upstreams, log_dir=root / "logs"
        )
    )
    (root / "nginx.conf").write_text(scale.nginx_main_config(root, include))

    # when nginx checks it
    result = subprocess.run(
        [
            NGINX,
            "-p",
            str(root),
            "-e",
            str(root / "error.log"),
            "-c",
            str(root / "nginx.conf"),
            "-t",
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    # then it is valid, plain HTTP on the address, the three servers under least_conn, and
    # everything else as shipped (the upgrade headers, the log format without queries)
    assert result.returncode == 0, result.stderr
    text = include.read_text()
    assert "listen 127.0.0.1:18080;" in text
    assert "ssl" not in text.replace("academy_no_query", "")
    upstream_block = text.split("upstream academy_asgi {", 1)[1].split("}", 1)[0]
    assert "least_conn;" in upstream_block
    assert [line.strip() for line in upstream_block.splitlines() if "server " in line] == [
        "server 127.0.0.1:18001;",
        "server 127.0.0.1:18002;",
        "server 127.0.0.1:18003;",
    ]
    assert "proxy_set_header Upgrade $http_upgrade;" in text
    assert "location = /metrics" in text
    assert "/var/log/nginx" not in text


@pytest.mark.slow
def test_the_proxy_never_forwards_metrics_to_a_server(proxy: Proxy, upstream: None) -> None:
    # given nginx running the shipped configuration in front of an upstream answering any GET
    process = subprocess.Popen(proxy.nginx(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not devservices.port_open("127.0.0.1", proxy.port):
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

        # when a client asks the proxy for /metrics, and for another path
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"https://127.0.0.1:{proxy.port}/metrics", context=context)
        with urllib.request.urlopen(
            f"https://127.0.0.1:{proxy.port}/health/", context=context, timeout=10
        ) as response:
            other = response.read()
    finally:
        devservices.stop_process(process)

    # then /metrics is answered 404 by nginx itself, while other paths reach the upstream
    assert refused.value.code == 404
    assert other == b"ok"
