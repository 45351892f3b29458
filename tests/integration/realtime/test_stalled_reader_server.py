"""A client that never reads, against a real uvicorn process (audit F9).

The server is the production command (``project.devrun.asgi_server_command``) with a short
``REALTIME_SEND_TIMEOUT``. The client is a raw TCP socket with a tiny receive buffer that
completes the WebSocket handshake, subscribes, and then never reads again, while this test
keeps publishing state changes. The server must abort the connection (not merely queue a
close frame behind data that never drains) and let go of the consumer's subscriptions.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from project import devrun, devservices
from realtime import store
from realtime.keys import Topic
from realtime.state import Change, Progress
from tests.support.tokens import ALPHA, make_token

SEND_TIMEOUT = 2.0
RESYNC_INTERVAL = 1.0
TCP_ESTABLISHED = 1
BASE_DIR = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = _free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "REALTIME_SEND_TIMEOUT": str(SEND_TIMEOUT),
        "REALTIME_RESYNC_INTERVAL": str(RESYNC_INTERVAL),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            devrun.asgi_server_command("127.0.0.1", port, server="uvicorn"),
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not devservices.port_open("127.0.0.1", port):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield port, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _client_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    size = len(payload)
    header = bytes([0x81]) + (
        bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
    )
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _open_never_reading(port: int, token: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # before connect: a tiny window
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/v1/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Origin: http://127.0.0.1:8000\r\n"
            f"Sec-WebSocket-Protocol: realtime.v1, bearer.{token}\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:  # the handshake answer is the last thing ever read
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def _tcp_state(sock: socket.socket) -> int:
    return int(struct.unpack("B", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1))[0])


def _subscribers(client: redis.Redis, topic: Topic) -> int:
    [(_name, count)] = client.pubsub_numsub(store.keyspace().group_channel(ALPHA, topic))
    return int(count)


def test_F9_a_client_that_never_reads_is_aborted_and_its_subscriptions_released(
    server: tuple[int, Path], r: redis.Redis
) -> None:
    # given: a socket that subscribed to ten busy topics and never reads
    port, log = server
    topics = [Topic.job(uuid.uuid4()) for _ in range(10)]
    for topic in topics:
        store.publish(ALPHA, topic, Change(status="PROCESSING", owner_id=7, attempt=1))
    sock = _open_never_reading(port, make_token(lifetime=600))
    for topic in topics:
        sock.sendall(_client_frame(f'{{"type":"subscribe","topic":"{topic}"}}'))
    subscribed_deadline = time.monotonic() + 10
    while not all(_subscribers(r, topic) == 1 for topic in topics):
        assert time.monotonic() < subscribed_deadline, "the server never subscribed"
        time.sleep(0.05)

    # when: the server keeps pushing ~1 KB progress frames to it
    step = "x" * 1000
    # The stall is seen once one send has waited SEND_TIMEOUT, at the next sweep (every
    # RESYNC_INTERVAL ± 20 %), and the goodbye gets 1 s before the transport is aborted.
    # A deadline for liveness, not a timing claim: the slack covers a machine whose load
    # average is many times its cores (the server then waits long for its turns).
    bound = SEND_TIMEOUT + 2 * RESYNC_INTERVAL + 1 + 45
    deadline = time.monotonic() + bound
    percent = 0.0
    while _tcp_state(sock) == TCP_ESTABLISHED and time.monotonic() < deadline:
        percent = min(99.0, percent + 0.01)
        for topic in topics:
            store.publish(
                ALPHA, topic, Change(progress=Progress(percent=percent, step_name_display=step))
            )
        # About 2,000 frames/s: the 2 KB window is full within the first round anyway, and a
        # loop without a pause would take the CPU the server needs to notice the stall.
        time.sleep(0.005)

    # then: reset by the server, and none of its groups is left subscribed
    state = _tcp_state(sock)
    sock.close()
    assert state != TCP_ESTABLISHED, "the server never aborted the stalled connection"
    released_deadline = time.monotonic() + 10
    while any(_subscribers(r, topic) for topic in topics):
        assert time.monotonic() < released_deadline, "the consumer's subscriptions leaked"
        time.sleep(0.05)
    assert "client not reading" in log.read_text()
