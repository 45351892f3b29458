"""Private services and real processes for the fault suite.

Nothing here touches the shared services other test runs use: every Redis (and PostgreSQL)
a fault test breaks is its own, on a free port, with its data under the test's tmp dir.
Processes (workers, the ASGI server) are real ``manage.py``/uvicorn children, pointed at those
services through a :class:`~tests.support.faultproxy.FaultProxy`.

Each scenario ends with one machine-readable line (:func:`report`), which docs/RELIABILITY.md
collects::

    FAULT-RESULT {"scenario": "...", "jobs": 5, "watchers": 5, "lost": 0, ...}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from project import devservices

BASE_DIR = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
RESULT_PREFIX = "FAULT-RESULT "
RESULTS_FILE_ENV = "FAULT_RESULTS_FILE"  # when set, result lines are appended there too


def wait_for(predicate: Callable[[], Any], *, timeout: float = 15, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def _wait_port(port: int, process: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        if devservices.port_open("127.0.0.1", port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


# --- Redis ------------------------------------------------------------------------------------
@dataclass
class RedisServer:
    """A private ``redis-server``: its own port, directory, dump file and memory limit."""

    directory: Path
    port: int = 0
    maxmemory: str = "0"
    policy: str = "volatile-lru"
    replicaof: tuple[str, int] | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def dump(self) -> Path:
        return self.directory / "dump.rdb"

    def url(self, db: int = 0, *, port: int | None = None) -> str:
        return f"redis://127.0.0.1:{port or self.port}/{db}"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or devservices.free_port()
        argv = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--dbfilename", "dump.rdb",
            "--save", "",  # dumps only when a test asks (SAVE), so each test knows what is in it
            "--appendonly", "no",
            "--maxmemory", self.maxmemory,
            "--maxmemory-policy", self.policy,
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if self.replicaof is not None:
            argv += ["--replicaof", self.replicaof[0], str(self.replicaof[1])]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.process)
        wait_for(self._answers, timeout=10)
        return self

    def _answers(self) -> bool:
        with contextlib.suppress(redis.RedisError):
            return bool(self.client().ping())
        return False

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis.from_url(self.url(db), socket_timeout=5)

    def save(self) -> Path:
        """Write the dump now and return its path."""
        self.client().save()
        return self.dump

    def stop(self) -> None:
        """Stop without writing a dump (a crash of a server without persistence)."""
        devservices.stop_process(self.process, sig=signal.SIGKILL, timeout=5)
        self.process = None

    def restart(self, *, dump: Path | None = None, keep_dump: bool = True) -> None:
        """Stop, then start on the same port: from ``dump`` (e.g. a stale copy, as a replica
        promoted after missing the last writes would be), from the current dump file
        (``keep_dump``), or empty."""
        self.stop()
        if dump is not None and dump != self.dump:
            shutil.copyfile(dump, self.dump)
        elif not keep_dump:
            self.dump.unlink(missing_ok=True)
        self.start()

    def stale_copy(self) -> Path:
        """Save now and keep a copy of the dump: the state a lagging replica would have."""
        copy = self.directory / f"stale-{time.monotonic_ns()}.rdb"
        shutil.copyfile(self.save(), copy)
        return copy

    def flushall(self) -> None:
        self.client().flushall()


# --- PostgreSQL ------------------------------------------------------------------------------
def _postgres_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"{name} not found under /usr/lib/postgresql/*/bin")
    return str(found[-1])


@dataclass
class PostgresCluster:
    """A private PostgreSQL cluster (initdb + pg_ctl), for restart scenarios.

    initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user.
    """

    directory: Path
    port: int = 0

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, name: str = "postgres", *, port: int | None = None) -> str:
        return f"postgres://postgres@127.0.0.1:{port or self.port}/{name}"

    def _run(self, *argv: str) -> None:
        command = list(argv)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> PostgresCluster:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self.port = self.port or devservices.free_port()
        self._run(
            _postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        return self

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        self._run(
            _postgres_bin("pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.directory / "postgres.log"), "-w", "start",
        )  # fmt: skip

    def stop(self, *, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, *, mode: str = "immediate") -> None:
        self.stop(mode=mode)
        self.start()


# --- processes -------------------------------------------------------------------------------
@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no cleanup, no shutdown hook, no flush."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def terminate(self, timeout: float = 15) -> int:
        devservices.stop_process(self.popen, timeout=timeout)
        return int(self.popen.returncode)


@dataclass
class Processes:
    """Real worker and server processes with one environment; all killed at teardown."""

    env: dict[str, str]
    logs: Path
    started: list[Process] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], **env: str) -> Process:
        log = self.logs / f"{name}-{len(self.started) + 1}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv, cwd=BASE_DIR, env={**self.env, **env}, stdout=out, stderr=subprocess.STDOUT
            )
        process = Process(name=name, popen=popen, log=log)
        self.started.append(process)
        return process

    def relay(self, *args: str, **env: str) -> Process:
        """The outbox relay (``manage.py relay_outbox``, workers/relay.py)."""
        return self.spawn("relay", [sys.executable, "manage.py", "relay_outbox", *args], **env)

    def worker(self, queue: str = "messaging", *args: str, **env: str) -> Process:
        argv = [sys.executable, "manage.py", "run_worker", "--queue", queue, *args]
        return self.spawn(f"worker-{queue}", argv, **env)

    def server(self, port: int, **env: str) -> Process:
        """The production ASGI server (uvicorn, as infra/asgi runs it) on ``port``."""
        argv = [
            sys.executable, "-m", "uvicorn", "project.asgi:application",
            "--host", "127.0.0.1", "--port", str(port),
            "--ws", "websockets-sansio", "--no-access-log", "--lifespan", "off",
        ]  # fmt: skip
        process = self.spawn("server", argv, **env)
        _wait_port(port, process.popen, timeout=180)  # a loaded 2-core machine imports slowly
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.popen.poll() is None:
                process.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=10)

    def tails(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.output()[-chars:]}" for p in self.started)


# --- results ---------------------------------------------------------------------------------
@dataclass
class Outcome:
    """One scenario's figures, as docs/RELIABILITY.md lists them."""

    scenario: str
    jobs: int
    watchers: int = 0
    lost: int = 0  # a job without its terminal state (record or Redis), or a watcher that
    # never saw it
    duplicated: int = 0  # more than one result row or terminal transition
    stuck: int = 0  # non-terminal when the scenario ended
    seconds_to_converge: float = 0.0
    notes: str = ""

    def line(self) -> str:
        data = {
            "scenario": self.scenario,
            "jobs": self.jobs,
            "watchers": self.watchers,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "stuck": self.stuck,
            "seconds_to_converge": round(self.seconds_to_converge, 2),
        }
        if self.notes:
            data["notes"] = self.notes
        return RESULT_PREFIX + json.dumps(data, ensure_ascii=False)


def report(outcome: Outcome) -> str:
    """Print the scenario's result line (``pytest -s`` or the results file collects it)."""
    line = outcome.line()
    print(line)  # noqa: T201 - the suite's machine-readable output
    target = os.environ.get(RESULTS_FILE_ENV)
    if target:
        with Path(target).open("a") as out:
            out.write(line + "\n")
    return line


@contextlib.contextmanager
def timer() -> Iterator[Callable[[], float]]:
    started = time.monotonic()
    yield lambda: time.monotonic() - started


# --- watchers: WebSocket clients that behave like the TypeScript one --------------------------
@dataclass
class Watcher:
    topic: str
    status: str | None = None
    epoch: int = 0
    seq: int = 0
    frames: int = 0
    dropped: int = 0  # state frames not above the held (epoch, seq)
    error: str | None = None  # the code of the last error frame about the topic
    reconnects: int = 0
    terminal_at: float | None = None  # monotonic
    terminal_wall: float | None = None  # time.time(), to compare with database timestamps
    # Do what the browser client does on a not_found answer: read the record once (the detail
    # endpoint repairs Redis), then look again (the client polls slowly; this resubscribes).
    reads_record: bool = False
    record_reads: int = 0


# Seconds a watcher that read the record after a not_found waits before it asks the socket
# again (the browser client polls such a topic every 10 s; the suite does not wait that long).
RECORD_RECHECK = 1.0


class Watchers:
    """One WebSocket per watched topic, each in its own task on a background loop: subscribe,
    keep the latest state, and on any disconnect reconnect and resubscribe with ``since`` and
    ``epoch`` (PROTOCOL.md §4), as the browser client does. States are ordered by
    ``(epoch, seq)`` (§6): a larger epoch wins whatever its seq, anything else not above the
    held position is dropped."""

    def __init__(self, url: str, token: str, origin: str) -> None:
        self.url, self.token, self.origin = url, token, origin
        self.watchers: list[Watcher] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def watch(
        self, topic: str, *, subscribed_timeout: float = 15, reads_record: bool = False
    ) -> Watcher:
        watcher = Watcher(topic=topic, reads_record=reads_record)
        self.watchers.append(watcher)
        ready = threading.Event()
        asyncio.run_coroutine_threadsafe(self._run(watcher, ready), self._loop)
        if not ready.wait(subscribed_timeout):
            raise AssertionError(f"watcher of {topic} got no answer (state, subscribed or error)")
        return watcher

    async def _run(self, watcher: Watcher, ready: threading.Event) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        while True:
            try:
                async with connect(
                    self.url,
                    subprotocols=["realtime.v1", f"bearer.{self.token}"],  # type: ignore[list-item]
                    origin=self.origin,  # type: ignore[arg-type]
                    open_timeout=5,
                ) as socket_:
                    frame: dict[str, Any] = {"type": "subscribe", "topic": watcher.topic}
                    if watcher.seq:
                        frame["since"], frame["epoch"] = watcher.seq, watcher.epoch
                    await socket_.send(json.dumps(frame))
                    async for raw in socket_:
                        message = json.loads(raw)
                        if message.get("type") == "error":
                            watcher.error = message.get("code")
                            if watcher.error == "not_found" and watcher.reads_record:
                                await asyncio.to_thread(self._read_record, watcher)
                                await asyncio.sleep(RECORD_RECHECK)
                                await socket_.send(json.dumps(frame))
                        if message.get("type") in ("state", "subscribed", "error"):
                            ready.set()
                        if message.get("type") == "state":
                            self._take(watcher, message)
            except (TimeoutError, OSError, WebSocketException):
                pass
            watcher.reconnects += 1
            await asyncio.sleep(0.5)

    def _read_record(self, watcher: Watcher) -> None:
        kind, _, topic_id = watcher.topic.partition(":")
        request = urllib.request.Request(  # noqa: S310 - the suite's own server
            f"{self.origin}/api/v1/{'jobs' if kind == 'job' else 'media/videos'}/{topic_id}/",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=30):  # noqa: S310
            watcher.record_reads += 1

    @staticmethod
    def _take(watcher: Watcher, state: dict[str, Any]) -> None:
        position = (int(state.get("epoch", 0)), int(state["seq"]))
        if position <= (watcher.epoch, watcher.seq):
            watcher.dropped += 1
            return
        (watcher.epoch, watcher.seq), watcher.status = position, state["status"]
        watcher.frames += 1
        if state["status"] in ("DONE", "FAILED"):
            watcher.terminal_at, watcher.terminal_wall = time.monotonic(), time.time()

    def statuses(self) -> list[str | None]:
        return [w.status for w in self.watchers]

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
