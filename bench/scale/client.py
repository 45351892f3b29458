"""One load-generating client process of the scale benchmark: whole academies, one socket
per user, and what those users do in the browser.

Run by ``bench.scale.run`` (several at once, each from its own source address), never by hand.
Every socket is a ``websockets`` (asyncio) client bound to the process's source address
(127.0.0.x) before it connects, so ports never run out. It behaves like the bundled client
(frontend-client/src): subprotocols ``realtime.v1, bearer.<token>``, an application ping every
25 s, reconnect after any close with exponential backoff and full jitter (0.5 s doubling to
20 s), resubscribe with ``since`` and ``epoch``; it unsubscribes a topic once it is terminal.

The process also drives its academies' users at the rates it is given (JSON on stdin):

* teachers and staff send messages and staff import Excel files (``POST /api/v1/jobs/``),
  teachers upload videos (register, PUT to S3, complete-upload); the creator's socket
  subscribes to the new topic, and so do the tenant's staff dashboards; a share of creators
  watch by polling the progress endpoint instead (their socket "down");
* the owner reads the detail endpoint once when the job ends;
* list reads: jobs (staff, teachers) and videos (students, teachers).

Publish→deliver latency of a state frame is the receive time minus the document's
``updated_at`` (Redis ``TIME`` when the script applied the change; same machine, same clock);
the first frame after a (re)subscribe is the snapshot and carries an older ``updated_at``, so
it is counted but not timed.

Protocol with the orchestrator (JSON lines): first stdin line is the job; then commands
``connect``, ``drive`` (``scale``: multiplier of the job rates, ``reads``: of the list reads;
0 stops them),
``report`` (counters since the last report), ``watch`` (every socket subscribes to
``topics``), ``storm`` (watch the sockets of one port reconnect), ``storm_report``, ``quit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import os
import random
import sys
import time
from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from bench.scale.webclient import Client, multipart, open_bound

PING_SECONDS = 25.0
PING_TICK = 0.5
BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0
TERMINAL = {"DONE", "FAILED", "READY", "CANCELLED"}
POLICY_RETRY = 30.0


def _poisson(mean: float) -> int:
    """A Poisson-distributed count (Knuth; the means here are far below 1 per tick)."""
    limit, k, product = math.exp(-mean), 0, random.random()
    while product > limit:
        k += 1
        product *= random.random()
    return k


def _now_ms() -> float:
    return time.time() * 1000.0


@dataclass(eq=False)
class Conn:
    """One user's socket and what it watches."""

    index: int
    user_id: int
    tenant_id: int
    role: str
    token: str
    port: int
    ws: ClientConnection | None = None
    wanted: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    snapshot: set[str] = field(default_factory=set)  # subscribed, first frame not seen yet
    attempts: int = 0
    opened: int = 0
    # Reconnect storm bookkeeping
    storm_t0: float | None = None
    storm_back: float | None = None


@dataclass
class JobTrack:
    kind: str
    owner: int
    created: float
    detail_url: str
    finished: bool = False


@dataclass
class PortStats:
    state_frames: int = 0
    snapshot_frames: int = 0
    pongs: int = 0
    other_frames: int = 0
    latency_ms: array = field(default_factory=lambda: array("f"))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Process:
    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.source: str = job["source"]
        self.host: str = job["host"]
        self.ports: list[int] = job["ports"]
        self.http = Client(self.source, per_server=int(job.get("http_per_server", 8)))
        self.conns: list[Conn] = [
            Conn(i, uid, tid, role, token, port)
            for i, (uid, tid, role, token, port) in enumerate(job["connections"])
        ]
        self.by_user: dict[int, Conn] = {c.user_id: c for c in self.conns}
        self.tenants: dict[int, dict[str, list[int]]] = {
            int(t): roles for t, roles in job["tenants"].items()
        }
        dashboard_share = float(job["model"]["dashboard_share"])
        self.dashboards: dict[int, list[Conn]] = {}
        for tid, roles in self.tenants.items():
            staff = [self.by_user[u] for u in roles["staff"] if u in self.by_user]
            self.dashboards[tid] = (
                staff[: max(1, round(len(staff) * dashboard_share))] if staff else []
            )
        self.port_stats: dict[int, PortStats] = {p: PortStats() for p in self.ports}
        self.closes: dict[str, int] = defaultdict(int)
        self.connect_failures = 0
        self.tracks: dict[str, JobTrack] = {}
        self.jobs: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"created": 0, "refused": {}, "finished": 0, "seq": [], "e2e_ms": []}
        )
        self.scale = 0.0  # job creation (messages, imports, uploads)
        self.read_scale = 0.0  # list reads
        self.pings_sent = 0
        self.task_errors = 0
        self.stopping = False
        self.tasks: set[asyncio.Task[Any]] = set()
        fixtures = job.get("fixtures") or {}
        self.fixtures = {
            "xlsx": [Path(p).read_bytes() for p in fixtures.get("xlsx", [])],
            "video": Path(fixtures["video"]).read_bytes() if fixtures.get("video") else b"",
        }
        self.xlsx_next = 0
        self.session_base = 10_000 * (int(job["index"]) + 1)

    # --- sockets --------------------------------------------------------------------------
    def _uri(self, conn: Conn) -> str:
        return f"ws://{self.host}:{conn.port}/ws/v1/"

    async def _open(self, conn: Conn) -> ClientConnection:
        sock = await open_bound(self.source, self.host, conn.port)
        try:
            return await connect(
                self._uri(conn),
                sock=sock,
                subprotocols=[Subprotocol("realtime.v1"), Subprotocol(f"bearer.{conn.token}")],
                compression=None,
                ping_interval=None,  # browsers send no protocol pings; they answer the server's
                open_timeout=60,
                close_timeout=2,
                max_queue=8,
                user_agent_header=None,
            )
        except BaseException:
            sock.close()
            raise

    async def run_conn(self, conn: Conn, first: asyncio.Future[bool]) -> None:
        """Keep ``conn`` open for the whole run: open, (re)subscribe, read, reconnect."""
        while not self.stopping:
            try:
                ws = await self._open(conn)
            except (OSError, InvalidHandshake, InvalidStatus, TimeoutError) as exc:
                self.connect_failures += 1
                if not first.done() and conn.attempts >= 8:
                    first.set_result(False)
                await self._backoff(conn, repr(exc))
                continue
            conn.ws = ws
            conn.attempts = 0
            conn.opened += 1
            for topic, position in list(conn.wanted.items()):
                await self._subscribe(conn, topic, position)
            if not conn.wanted:
                self._storm_check(conn)
            if not first.done():
                first.set_result(True)
            try:
                async for message in ws:
                    # Looked up per frame: report() replaces the counters.
                    self._on_frame(conn, self.port_stats[conn.port], message)
            except ConnectionClosed:
                pass
            conn.ws = None
            code = ws.close_code if ws.close_code is not None else 1006
            self.closes[str(code)] += 1
            if self.stopping:
                return
            if code == 4008:
                await asyncio.sleep(POLICY_RETRY * random.random())
            else:
                await self._backoff(conn, f"close {code}")

    async def _backoff(self, conn: Conn, reason: str) -> None:
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(conn.attempts, 30))
        conn.attempts += 1
        await asyncio.sleep(random.random() * ceiling)

    async def _subscribe(self, conn: Conn, topic: str, position: tuple[int, int] | None) -> None:
        frame: dict[str, Any] = {"type": "subscribe", "topic": topic}
        if position is not None:
            frame["epoch"], frame["since"] = position
        conn.snapshot.add(topic)
        ws = conn.ws
        if ws is None:
            return
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(frame))

    def _on_frame(self, conn: Conn, stats: PortStats, message: str | bytes) -> None:
        doc = json.loads(message)
        kind = doc.get("type")
        if kind == "state":
            topic = doc["topic"]
            if topic in conn.snapshot:
                conn.snapshot.discard(topic)
                stats.snapshot_frames += 1
                self._storm_check(conn)
            else:
                stats.state_frames += 1
                stats.latency_ms.append(_now_ms() - float(doc["updated_at"]))
            if topic not in conn.wanted:
                return  # a frame in flight after our unsubscribe
            conn.wanted[topic] = (int(doc["epoch"]), int(doc["seq"]))
            if doc.get("status") in TERMINAL:
                self._terminal(conn, topic, doc)
        elif kind == "pong":
            stats.pongs += 1
        elif kind == "subscribed":
            conn.snapshot.discard(doc["topic"])
            self._storm_check(conn)
        elif kind == "error":
            stats.errors[str(doc.get("code"))] += 1
            topic = doc.get("topic")
            if isinstance(topic, str):
                conn.snapshot.discard(topic)
                if doc.get("code") == "not_found":
                    conn.wanted.pop(topic, None)
                self._storm_check(conn)
        else:
            stats.other_frames += 1

    def _terminal(self, conn: Conn, topic: str, doc: dict[str, Any]) -> None:
        conn.wanted.pop(topic, None)
        ws = conn.ws
        if ws is not None:
            self._spawn(self._send_quietly(ws, {"type": "unsubscribe", "topic": topic}))
        track = self.tracks.get(topic)
        if track is not None and conn.user_id == track.owner and not track.finished:
            self._finish(track, topic, int(doc["seq"]))

    def _finish(self, track: JobTrack, topic: str, seq: int) -> None:
        track.finished = True
        stats = self.jobs[track.kind]
        stats["finished"] += 1
        stats["seq"].append(seq)
        stats["e2e_ms"].append((time.monotonic() - track.created) * 1000)
        owner = self.by_user.get(track.owner)
        if owner is not None:
            self._spawn(
                self.http.call(
                    "detail", "GET", self._url(owner, track.detail_url), token=owner.token
                )
            )
        self.tracks.pop(topic, None)

    async def _send_quietly(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(frame))

    def watch(self, conn: Conn, topic: str) -> None:
        if topic in conn.wanted:
            return
        conn.wanted[topic] = None
        if conn.ws is not None:
            self._spawn(self._subscribe(conn, topic, None))

    async def ping_loop(self) -> None:
        """One application ping per open socket every 25 s, spread over the period."""
        slots = int(PING_SECONDS / PING_TICK)
        tick = 0
        ping = json.dumps({"type": "ping"})
        while not self.stopping:
            await asyncio.sleep(PING_TICK)
            tick += 1
            for conn in self.conns[tick % slots :: slots]:
                ws = conn.ws
                if ws is not None:
                    try:
                        await ws.send(ping)
                        self.pings_sent += 1
                    except ConnectionClosed:
                        pass

    # --- storm ----------------------------------------------------------------------------
    def storm(self, port: int) -> int:
        t0 = time.time()
        count = 0
        for conn in self.conns:
            conn.storm_t0 = conn.storm_back = None
            if conn.port == port:
                conn.storm_t0, count = t0, count + 1
        return count

    def _storm_check(self, conn: Conn) -> None:
        if conn.storm_t0 is None or conn.storm_back is not None or conn.ws is None:
            return
        if conn.opened >= 2 and not conn.snapshot:
            conn.storm_back = time.time()

    def storm_report(self) -> dict[str, Any]:
        watched = [c for c in self.conns if c.storm_t0 is not None]
        back = [c.storm_back - c.storm_t0 for c in watched if c.storm_back is not None]  # type: ignore[operator]
        return {
            "watched": len(watched),
            "back": back,
            "t0": watched[0].storm_t0 if watched else None,
        }

    # --- the users' activity --------------------------------------------------------------
    def _url(self, conn: Conn, path: str) -> str:
        return f"http://{self.host}:{conn.port}{path}"

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.task_errors += 1
            if self.task_errors <= 20:
                print(f"task failed: {task.exception()!r}", file=sys.stderr, flush=True)

    def _pick(self, roles: tuple[str, ...]) -> Conn | None:
        if not self.tenants:
            return None
        tid = random.choice(list(self.tenants))
        users = [u for role in roles for u in self.tenants[tid].get(role, []) if u in self.by_user]
        return self.by_user[random.choice(users)] if users else None

    async def arrivals(self, rates: dict[str, float]) -> None:
        """Poisson arrivals of every activity at its rate per second times its scale (job
        creation or list reads), drawn per 0.1 s tick, so a new scale applies at once."""
        tick = 0.1
        while not self.stopping:
            await asyncio.sleep(tick)
            for name, rate in rates.items():
                scale = self.read_scale if name.startswith("list_") else self.scale
                if scale > 0:
                    for _ in range(_poisson(rate * scale * tick)):
                        self._spawn(self.activity(name))

    async def activity(self, name: str) -> None:
        model = self.job["model"]
        if name == "message_teacher":
            creator = self._pick(("teacher",))
            await self._message(creator, int(model["teacher_recipients"]))
        elif name == "message_staff":
            creator = self._pick(("staff",))
            await self._message(creator, int(model["staff_recipients"]))
        elif name == "import":
            await self._import(self._pick(("staff",)))
        elif name == "upload":
            await self._upload(self._pick(("teacher",)))
        elif name == "list_staff":
            await self._list(self._pick(("staff",)), "/api/v1/jobs/?page_size=20", "list jobs")
        elif name == "list_teacher":
            conn = self._pick(("teacher",))
            if random.random() < 0.5:
                await self._list(conn, "/api/v1/jobs/?page_size=20", "list jobs")
            else:
                await self._list(conn, "/media/videos/?page_size=20", "list videos")
        elif name == "list_student":
            await self._list(self._pick(("student",)), "/media/videos/?page_size=20", "list videos")

    async def _list(self, conn: Conn | None, path: str, name: str) -> None:
        if conn is not None:
            await self.http.call(name, "GET", self._url(conn, path), token=conn.token)

    def _refused(self, kind: str, status: int) -> None:
        refused = self.jobs[kind]["refused"]
        refused[str(status)] = refused.get(str(status), 0) + 1

    async def _message(self, creator: Conn | None, recipients: int) -> None:
        if creator is None:
            return
        body = {
            "job_type": "messaging.send",
            "payload": {
                "subject": "공지: 내일 수업 안내",
                "body": "내일 수업은 7시에 시작합니다.",
                "recipients": [f"parent{i}@example.com" for i in range(recipients)],
            },
        }
        status, answer = await self.http.call(
            "create job",
            "POST",
            self._url(creator, "/api/v1/jobs/"),
            token=creator.token,
            json_body=body,
        )
        self._created("messaging", creator, status, answer)

    async def _import(self, creator: Conn | None) -> None:
        if creator is None:
            return
        data = self.fixtures["xlsx"][self.xlsx_next % len(self.fixtures["xlsx"])]
        self.xlsx_next += 1
        body, content_type = multipart(
            {"job_type": "excel_import", "initial_password": "welcome-2026", "dry_run": "false"},
            {
                "file": (
                    "students.xlsx",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    data,
                )
            },
        )
        status, answer = await self.http.call(
            "create job (xlsx)",
            "POST",
            self._url(creator, "/api/v1/jobs/"),
            token=creator.token,
            body=body,
            headers={"Content-Type": content_type},
        )
        self._created("ai", creator, status, answer)

    def _created(self, kind: str, creator: Conn, status: int, answer: bytes) -> None:
        if status != 202:
            self._refused(kind, status)
            return
        doc = json.loads(answer)
        self.jobs[kind]["created"] += 1
        self._follow(kind, creator, doc["topic"], doc["progress_url"], doc["detail_url"])

    def _follow(
        self, kind: str, creator: Conn, topic: str, progress_url: str, detail_url: str
    ) -> None:
        self.tracks[topic] = JobTrack(kind, creator.user_id, time.monotonic(), detail_url)
        if random.random() < float(self.job["model"]["fallback_share"]):
            self._spawn(self._poll(creator, topic, progress_url))
        else:
            self.watch(creator, topic)
        for dashboard in self.dashboards.get(creator.tenant_id, []):
            if dashboard is not creator:
                self.watch(dashboard, topic)

    async def _poll(self, conn: Conn, topic: str, progress_url: str) -> None:
        """The client's fallback schedule: 1 s for 10 s, 2 s to 60 s, 3 s after."""
        started = time.monotonic()
        while not self.stopping:
            elapsed = time.monotonic() - started
            await asyncio.sleep(1.0 if elapsed < 10 else 2.0 if elapsed < 60 else 3.0)
            status, answer = await self.http.call(
                "progress", "GET", self._url(conn, progress_url), token=conn.token
            )
            if status == 200:
                doc = json.loads(answer)
                if doc.get("status") in TERMINAL:
                    track = self.tracks.get(topic)
                    if track is not None and not track.finished:
                        self._finish(track, topic, int(doc["seq"]))
                    return
            elif status == 404:
                return

    async def _upload(self, creator: Conn | None) -> None:
        if creator is None:
            return
        data = self.fixtures["video"]
        self.session_base += 1
        status, answer = await self.http.call(
            "video register",
            "POST",
            self._url(creator, "/media/videos/"),
            token=creator.token,
            json_body={
                "session_id": self.session_base,
                "filename": "lecture.mp4",
                "size": len(data),
                "content_type": "video/mp4",
            },
        )
        if status != 201:
            self._refused("video", status)
            return
        doc = json.loads(answer)
        put_status, _ = await self.http.call(
            "video PUT (S3)",
            doc.get("upload_method", "PUT"),
            doc["upload_url"],
            body=data,
            headers=dict(doc.get("upload_headers") or {}),
        )
        if put_status != 200:
            self._refused("video", put_status)
            return
        status, _ = await self.http.call(
            "video complete-upload",
            "POST",
            self._url(creator, doc["complete_url"]),
            token=creator.token,
        )
        if status != 202:
            self._refused("video", status)
            return
        self.jobs["video"]["created"] += 1
        self._follow("video", creator, doc["topic"], doc["progress_url"], doc["detail_url"])

    # --- reports --------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        ports: dict[str, Any] = {}
        for port, stats in self.port_stats.items():
            ports[str(port)] = {
                "state_frames": stats.state_frames,
                "snapshot_frames": stats.snapshot_frames,
                "pongs": stats.pongs,
                "other_frames": stats.other_frames,
                "latency_ms": [round(x, 1) for x in stats.latency_ms],
                "errors": dict(stats.errors),
                "open": sum(1 for c in self.conns if c.port == port and c.ws is not None),
                "sockets": sum(1 for c in self.conns if c.port == port),
            }
        self.port_stats = {p: PortStats() for p in self.ports}
        jobs = {k: dict(v) for k, v in self.jobs.items()}
        self.jobs.clear()
        closes = dict(self.closes)
        self.closes.clear()
        out = {
            "ports": ports,
            "http": self.http.tally.take(),
            "jobs": jobs,
            "closes": closes,
            "connect_failures": self.connect_failures,
            "watching": sum(len(c.wanted) for c in self.conns),
            "unfinished_jobs": len(self.tracks),
            "pings_sent": self.pings_sent,
        }
        self.connect_failures = 0
        self.pings_sent = 0
        return out


async def main() -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Thousands of long-lived connection objects: collect the young generation rarely, as the
    # ASGI process does (project/asgi.py), so the client's pauses do not show up as latency.
    gc.set_threshold(50_000, 20, 100)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    proc = Process(json.loads(await reader.readline()))
    conn_tasks: list[asyncio.Task[None]] = []
    background: list[asyncio.Task[None]] = []
    while line := await reader.readline():
        command = json.loads(line)
        cmd = command["cmd"]
        if cmd == "connect":
            gate = asyncio.Semaphore(int(command.get("concurrency", 50)))
            started = time.monotonic()

            async def one(conn: Conn, gate: asyncio.Semaphore = gate) -> bool:
                async with gate:
                    first: asyncio.Future[bool] = loop.create_future()
                    conn_tasks.append(asyncio.create_task(proc.run_conn(conn, first)))
                    return await first

            results = await asyncio.gather(*(one(c) for c in proc.conns))
            gc.freeze()
            background.append(asyncio.create_task(proc.ping_loop()))
            rates = {name: float(rate) for name, rate in proc.job["rates"].items()}
            background.append(asyncio.create_task(proc.arrivals(rates)))
            _say(
                {
                    "ready": sum(results),
                    "failed": len(results) - sum(results),
                    "seconds": round(time.monotonic() - started, 2),
                }
            )
        elif cmd == "drive":
            proc.scale = float(command["scale"])
            proc.read_scale = float(command.get("reads", command["scale"]))
            _say({"ok": True})
        elif cmd == "report":
            _say(proc.report())
        elif cmd == "watch":
            for conn in proc.conns:
                for topic in command["topics"]:
                    proc.watch(conn, topic)
            _say({"ok": True})
        elif cmd == "storm":
            _say({"watching": proc.storm(int(command["port"]))})
        elif cmd == "storm_report":
            _say(proc.storm_report())
        elif cmd == "quit":
            break
    proc.stopping = True
    proc.scale = proc.read_scale = 0
    for task in background:
        task.cancel()
    for conn in proc.conns:
        if conn.ws is not None:
            proc._spawn(conn.ws.close())
    await asyncio.sleep(1)
    for task in conn_tasks:
        task.cancel()
    proc.http.close()
    os._exit(0)


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
