"""What the feed's extra PUBLISH costs Redis per change, against the script without it.

One private ``redis-server`` (nothing else talks to it, so ``INFO commandstats`` and the
network counters are this benchmark's alone). In interleaved rounds, the same changes (a job
through PENDING, PROCESSING, progress reports and DONE, as the workers publish them) run
through two scripts:

* baseline: ``realtime/lua/state.lua`` with the feed's ``PUBLISH`` line taken out, i.e. the
  script as it was before feeds;
* feeds: the script as shipped.

Each is measured with nobody on the feed channel (a tenant without a dashboard open) and with
one subscriber on it (a server process with a dashboard), and one subscriber on the topic's own
channel throughout. Per change: Redis commands run, bytes in (the ``EVALSHA`` request), bytes
out (replies and pub/sub deliveries), and the script's server time (``usec_per_call``).

Run alone: ``python -m bench.feeds.redis_cost`` (prints JSON); ``bench.feeds.run`` calls it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FEED_PUBLISH_LINE = "redis.call('PUBLISH', ARGV[9], cmsgpack.pack(message))\n"
JOBS_PER_ROUND = 400
PROGRESS_PER_JOB = 8  # + PENDING, PROCESSING, DONE: 11 changes per job
ROUNDS = 3
TENANT = 1


def baseline_source(source: str) -> str:
    """The shipped script without the feed's PUBLISH: what each change cost before feeds."""
    if source.count(FEED_PUBLISH_LINE) != 1:
        raise RuntimeError("the feed PUBLISH line of lua/state.lua changed: update the benchmark")
    return source.replace(FEED_PUBLISH_LINE, "")


class Drain:
    """A subscriber that reads (and counts) every message on its channels, in a thread."""

    def __init__(self, client: Any, channels: list[str]) -> None:
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(*channels)
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.pubsub.get_message(timeout=0.05) is not None:
                self.count += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.pubsub.close()


def _changes() -> list[Any]:
    from realtime.state import Change, Progress

    lifecycle = [Change(status="PENDING", owner_id=7, job_type="excel_import", attempt=0)]
    lifecycle.append(Change(status="PROCESSING", attempt=1))
    for i in range(1, PROGRESS_PER_JOB + 1):
        lifecycle.append(
            Change(
                progress=Progress(
                    percent=round(100 * i / (PROGRESS_PER_JOB + 1), 1),
                    step="write",
                    step_index=3,
                    step_total=3,
                    step_name_display="학생 등록",
                    step_percent=40,
                    remaining_seconds=12,
                )
            )
        )
    lifecycle.append(Change(status="DONE", result={"counts": {"created": 300, "failed": 4}}))
    return lifecycle


def _run_scenario(
    client: Any, sha: str, *, feed_listener: bool, baseline: bool
) -> dict[str, float]:
    from realtime import store
    from realtime.keys import Feed, Topic

    space = store.keyspace()
    feed_channel = space.feed_channel(TENANT, Feed.JOBS)
    jobs = [Topic.job(uuid.uuid4()) for _ in range(JOBS_PER_ROUND)]
    channels = [space.group_channel(TENANT, topic) for topic in jobs]
    topic_drain = Drain(client, channels)
    feed_drain = Drain(client, [feed_channel]) if feed_listener else None
    time.sleep(0.2)
    client.config_resetstat()
    before = client.info("stats")
    changes = _changes()
    started = time.perf_counter()
    # A worker's publishes: one call per change, pipelined per step so the client's round
    # trips are not what is measured.
    for change in changes:
        pipe = client.pipeline(transaction=False)
        for topic in jobs:
            keys, args = store._apply_args(TENANT, topic, change)
            if baseline:  # the request as it was before feeds: without the feed's channel
                args = [arg for arg in args if arg != feed_channel]
            pipe.evalsha(sha, len(keys), *keys, *args)
        for reply in pipe.execute():
            if not store._publish_result(reply).accepted:
                raise RuntimeError(f"a change was refused: {reply[1]!r}")
    elapsed = time.perf_counter() - started
    total = len(changes) * len(jobs)
    deadline = time.monotonic() + 10
    expected_feed = total if feed_listener else 0
    while time.monotonic() < deadline and (
        topic_drain.count < total or (feed_drain is not None and feed_drain.count < expected_feed)
    ):
        time.sleep(0.05)
    after = client.info("stats")
    stats = client.info("commandstats")
    topic_drain.stop()
    if feed_drain is not None:
        feed_drain.stop()
    commands = {
        name.removeprefix("cmdstat_"): value for name, value in stats.items() if "calls" in value
    }
    evalsha = commands.get("evalsha", {})
    # Commands the measurement itself ran (INFO, CONFIG, SUBSCRIBE) are not the script's.
    script_calls = sum(
        int(v["calls"])
        for name, v in commands.items()
        if name not in {"info", "config|resetstat", "subscribe", "ping", "client|setinfo"}
    )
    return {
        "changes": total,
        "commands_per_change": (script_calls - int(evalsha.get("calls", 0))) / total,
        "publishes_per_change": int(commands.get("publish", {}).get("calls", 0)) / total,
        "bytes_in_per_change": (after["total_net_input_bytes"] - before["total_net_input_bytes"])
        / total,
        "bytes_out_per_change": (after["total_net_output_bytes"] - before["total_net_output_bytes"])
        / total,
        "script_us_per_change": float(evalsha.get("usec_per_call", 0.0)),
        "changes_per_second": total / elapsed,
        "delivered_topic": topic_drain.count / total,
        "delivered_feed": (feed_drain.count / total) if feed_drain is not None else 0.0,
    }


def measure(url: str) -> dict[str, Any]:
    """Every scenario, ``ROUNDS`` times interleaved; the median of each figure."""
    import redis

    from realtime import store

    client = redis.Redis.from_url(url)
    shipped = store.SCRIPT_SOURCE
    shas = {
        "baseline": client.script_load(baseline_source(shipped)),
        "feeds": client.script_load(shipped),
    }
    scenarios = [
        ("baseline", False),
        ("feeds", False),
        ("feeds", True),
    ]
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in range(ROUNDS):
        for name, listener in scenarios:
            key = f"{name}{'+listener' if listener else ''}"
            runs.setdefault(key, []).append(
                _run_scenario(
                    client, shas[name], feed_listener=listener, baseline=name == "baseline"
                )
            )
            client.flushdb()
    result: dict[str, Any] = {}
    for key, samples in runs.items():
        figures = {}
        for figure in samples[0]:
            values = sorted(s[figure] for s in samples)
            figures[figure] = values[len(values) // 2]
        result[key] = figures
    return result


def main() -> None:
    from bench.feeds.run import private_redis, setup_django

    with private_redis() as url:
        setup_django(url)
        print(json.dumps(measure(url), indent=2))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    main()
