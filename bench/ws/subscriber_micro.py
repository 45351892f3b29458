"""The layer's pub/sub read alone: channels-redis' reader task against realtime.subscriber.

    python -m bench.ws.subscriber_micro [--messages 100000] [--output subscriber_micro]

One process receives, another publishes ``--messages`` state-sized payloads (330 bytes) to one
channel as fast as a pipeline goes. The receiver is, in turn:

* ``channels-redis``: its ``RedisSingleShardConnection`` (the stock reader task: a loop of
  ``PubSub.get_message(timeout=0.1)``), with ``_receive_message`` replaced by a counter;
* ``subscriber``: ``realtime.subscriber.Subscriber`` with a counting dispatch.

Measured per receiver: the receiving process's CPU time from subscribing to the last message,
per message, and how many messages each dispatch (read callback, or ``_receive_message`` call)
carried. Uses the benchmark's Redis (``REDIS_URL``, default db 9). Writes ``<output>.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAYLOAD = b"x" * 330


def _publish(url: str, channel: str, count: int, start: Any) -> None:
    import redis

    client = redis.Redis.from_url(url)
    start.wait()
    sent = 0
    while sent < count:
        pipe = client.pipeline(transaction=False)
        for _ in range(min(200, count - sent)):
            pipe.publish(channel, PAYLOAD)
        sent += len(pipe.execute())
    client.close()


async def _receive(kind: str, url: str, count: int) -> dict[str, Any]:
    channel = f"micro:{kind}:{os.getpid()}:{time.monotonic_ns()}"
    done = asyncio.get_running_loop().create_future()
    seen = [0, 0]  # messages, dispatch calls

    def counted(n: int) -> None:
        seen[0] += n
        seen[1] += 1
        if seen[0] >= count and not done.done():
            done.set_result(None)

    closer: Any
    if kind == "channels-redis":
        from channels_redis.pubsub import RedisSingleShardConnection

        class Counting(RedisSingleShardConnection):  # type: ignore[misc]
            def _receive_message(self, message: Any) -> None:
                if message is not None:
                    counted(1)

        shard = Counting({"address": url}, None)
        await shard.subscribe(channel)
        closer = shard.flush
    else:
        from realtime.resp import Endpoint
        from realtime.subscriber import Subscriber

        subscriber = Subscriber(Endpoint.from_url(url), lambda batch: counted(len(batch)))
        await subscriber.subscribe(channel)
        closer = subscriber.close
    start = multiprocessing.get_context("spawn").Event()
    publisher = multiprocessing.get_context("spawn").Process(
        target=_publish, args=(url, channel, count, start)
    )
    publisher.start()
    await asyncio.sleep(1.0)
    cpu0, wall0 = time.process_time(), time.monotonic()
    start.set()
    await asyncio.wait_for(done, timeout=300)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    publisher.join()
    await closer()
    return {
        "receiver": kind,
        "messages": seen[0],
        "us_per_message": cpu / seen[0] * 1e6,
        "per_dispatch": seen[0] / seen[1],
        "messages_per_s": seen[0] / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default="subscriber_micro")
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
    import uvloop

    rows = []
    for _ in range(args.rounds):
        for kind in ("channels-redis", "subscriber"):
            row = uvloop.run(_receive(kind, url, args.messages))
            print(row, flush=True)
            rows.append(row)
    lines = [
        f"{args.messages:,} messages of {len(PAYLOAD)} bytes per round, {args.rounds} rounds, "
        f"{os.cpu_count()} CPUs, load average at the end {os.getloadavg()[0]:.2f}.",
        "",
        "| receiver | receiver CPU µs/message | messages per dispatch | received/s |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['receiver']} | {r['us_per_message']:.2f} | {r['per_dispatch']:.1f} | "
        f"{r['messages_per_s']:,.0f} |"
        for r in rows
    ]
    text = "\n".join(lines) + "\n"
    (HERE / f"{args.output}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
