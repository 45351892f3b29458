"""The scale benchmark's load client against a real uvicorn process (no timings asserted).

``bench/scale/client.py`` is the tool that holds the 10,000 sockets of ``make bench-scale``;
this checks, small (51 sockets, one server process), that what it reports is what happened:
every socket bound to its own source address opens, each state the store publishes reaches
every watcher once, the first frame after a subscribe is counted as the snapshot and the
rest are timed, a socket of another tenant is refused the topics and gets no frame, and the
orchestrator's merge keeps every field the report needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.scale.run import merge_reports
from project import devrun, devservices
from realtime import store
from realtime.keys import Topic
from realtime.state import Change
from tests.support.tokens import ALPHA, BETA, make_token

BASE_DIR = Path(__file__).resolve().parents[3]
SOCKETS = 50
OWNER = 7


@pytest.fixture
def server(tmp_path: Path) -> Iterator[int]:
    port = devservices.free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            devrun.asgi_server_command("127.0.0.1", port, server="uvicorn"),
            cwd=BASE_DIR,
            env=dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not devservices.port_open("127.0.0.1", port):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class LoadClient:
    """``python -m bench.scale.client`` speaking its JSON-lines protocol."""

    def __init__(self, job: dict[str, Any], log: Path) -> None:
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.scale.client"],
            cwd=BASE_DIR,
            env={**os.environ, "PYTHONPATH": str(BASE_DIR)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        self.send(job)

    def send(self, payload: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(payload) + "\n")
        self.process.stdin.flush()

    def ask(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.send(payload)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the client exited ({self.process.poll()})"
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.send({"cmd": "quit"})
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _job(port: int) -> dict[str, Any]:
    alpha = [
        [
            1000 + i,
            ALPHA,
            "staff",
            make_token(tenant_id=ALPHA, user_id=1000 + i, lifetime=600),
            port,
        ]
        for i in range(SOCKETS)
    ]
    beta = [[2000, BETA, "staff", make_token(tenant_id=BETA, user_id=2000, lifetime=600), port]]
    return {
        "index": 0,
        "source": "127.0.0.2",
        "host": "127.0.0.1",
        "ports": [port],
        "connections": alpha + beta,
        "tenants": {},
        "rates": {},
        "model": {
            "dashboard_share": 0.5,
            "fallback_share": 0.0,
            "teacher_recipients": 1,
            "staff_recipients": 1,
        },
    }


def _until(client: LoadClient, done: Any, timeout: float = 30) -> dict[str, Any]:
    """Reports summed (they reset at each call) until ``done(sum)`` holds or ``timeout``."""
    total: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while True:
        report = merge_reports([client.ask({"cmd": "report"})])
        for port, stats in report["ports"].items():
            into = total.setdefault(port, {"state_frames": 0, "snapshot_frames": 0, "latency": 0})
            into["state_frames"] += stats["state_frames"]
            into["snapshot_frames"] += stats["snapshot_frames"]
            into["latency"] += len(stats["latency_ms"])
            for code, n in stats["errors"].items():
                into.setdefault("errors", {})[code] = into.get("errors", {}).get(code, 0) + n
            into["open"] = stats["open"]
        total["watching"] = report["watching"]
        total["last"] = report
        if done(total) or time.monotonic() > deadline:
            return total
        time.sleep(0.2)


def test_every_watcher_gets_each_state_once_and_the_other_tenant_none(
    server: int, tmp_path: Path
) -> None:
    # given: two running jobs of tenant ALPHA, and 50 ALPHA staff sockets plus one BETA staff
    # socket opened by the load client from 127.0.0.2
    topics = [Topic.job(uuid.uuid4()) for _ in range(2)]
    for topic in topics:
        store.publish(ALPHA, topic, Change(status="PENDING", owner_id=OWNER, job_type="x"))
    client = LoadClient(_job(server), tmp_path / "client.log")
    try:
        opened = client.ask({"cmd": "connect", "concurrency": 20})
        assert opened == {"ready": SOCKETS + 1, "failed": 0, "seconds": opened["seconds"]}

        # when: every socket watches both topics, and each job then runs and finishes
        assert client.ask({"cmd": "watch", "topics": [str(t) for t in topics]}) == {"ok": True}
        key = str(server)
        subscribed = _until(
            client,
            lambda t: (
                t.get(key, {}).get("snapshot_frames") == 2 * SOCKETS
                and t.get(key, {}).get("errors", {}).get("not_found") == 2
            ),
        )
        for topic in topics:
            store.publish(ALPHA, topic, Change(status="PROCESSING", attempt=1))
            store.publish(ALPHA, topic, Change(status="DONE", attempt=1, result={"sent": 1}))
        delivered = _until(client, lambda t: t.get(key, {}).get("state_frames") == 4 * SOCKETS)

        # then: each ALPHA socket got one snapshot per topic, then both changes of each, every
        # change timed; BETA's socket was refused both topics and got nothing; every socket is
        # still open and, the jobs being terminal, watches nothing any more
        assert subscribed[key]["snapshot_frames"] == 2 * SOCKETS, subscribed
        assert subscribed[key]["errors"] == {"not_found": 2}
        assert delivered[key]["state_frames"] == 4 * SOCKETS
        assert delivered[key]["latency"] == 4 * SOCKETS
        assert delivered[key]["open"] == SOCKETS + 1
        assert delivered["watching"] == 0
        # and the report carries every field the orchestrator summarises
        last = delivered["last"]
        assert set(last) >= {"ports", "http", "jobs", "closes", "connect_failures", "watching"}
        assert set(last["ports"][key]) >= {
            "state_frames",
            "snapshot_frames",
            "pongs",
            "latency_ms",
            "errors",
            "open",
            "sockets",
        }
        assert last["ports"][key]["sockets"] == SOCKETS + 1
    finally:
        client.close()
