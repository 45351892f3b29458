"""The ASGI processes' metrics: what they are, and the one-line calls that record them.

Names and labels are the contract of the dashboards and of ``infra/prometheus/``; labels take
a few fixed values each (a close code, a topic kind, an outcome), never an id of a job, a
tenant or a user, so a series count does not grow with use.

- ``academy_ws_connections`` (gauge, summed over live processes): open WebSockets,
  handshakes included; ``academy_ws_connections_opened_total``: WebSockets opened (storms);
- ``academy_ws_subscriptions`` (gauge, summed over live processes): subscriptions held;
- ``academy_ws_frames_sent_total``: frames written to clients;
  ``academy_ws_frames_coalesced_total``: progress frames a newer state replaced before a slow
  client took them;
- ``academy_publish_deliver_lag_seconds`` (histogram): from a state's ``updated_at`` (Redis
  ``TIME`` in the script) to its hand-over to a connection of this process; includes any
  clock difference between Redis and this host;
- ``academy_resync_repairs_total{cause}``: states the resync sweep sent, ``behind`` (a
  publish was lost) or ``rebuilt`` (Redis lost the topic); ``academy_layer_gaps_total``: gaps
  in the channel layer's heartbeats (published messages were lost);
- ``academy_ws_closes_total{code}``: connections ended, by close code;
- ``academy_progress_requests_total{kind,outcome}``: ``GET …/progress/`` answers, outcome
  ``running`` (a fallback poll), ``terminal``, ``not_found``, ``unauthenticated``,
  ``forbidden`` or ``unavailable``.

The fallback polling rate is ``rate(academy_progress_requests_total{outcome="running"}[1m])``
(the recording rule ``academy:fallback_polls:rate1m`` in ``infra/prometheus/academy.rules.yml``).

Frames, coalescing and lag are counted per frame, so they are tallies
(``realtime.prometheus``), flushed every :data:`FLUSH_INTERVAL` seconds by a task on each
event loop that opened a connection.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from realtime import prometheus

FLUSH_INTERVAL = 1.0

CONNECTIONS = Gauge(
    "academy_ws_connections",
    "Open WebSocket connections, handshakes included.",
    multiprocess_mode="livesum",
)
CONNECTIONS_OPENED = Counter("academy_ws_connections_opened", "WebSocket connections opened.")
SUBSCRIPTIONS = Gauge(
    "academy_ws_subscriptions", "Topic subscriptions held.", multiprocess_mode="livesum"
)
_FRAMES_SENT = Counter("academy_ws_frames_sent", "Frames written to WebSocket clients.")
_FRAMES_COALESCED = Counter(
    "academy_ws_frames_coalesced",
    "Progress frames replaced by a newer state before the client took them.",
)
_LAG = Histogram(
    "academy_publish_deliver_lag_seconds",
    "From a state's updated_at (Redis TIME when the script applied it) to its hand-over to a "
    "WebSocket connection of this process.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RESYNC_REPAIRS = Counter(
    "academy_resync_repairs",
    "States the resync sweep sent to a connection that was behind.",
    ["cause"],
)
LAYER_GAPS = Counter(
    "academy_layer_gaps", "Gaps in the channel layer's heartbeats: messages were lost."
)
CLOSES = Counter("academy_ws_closes", "WebSocket connections ended, by close code.", ["code"])
PROGRESS_REQUESTS = Counter(
    "academy_progress_requests",
    "Progress endpoint requests, by topic kind and outcome (running = a fallback poll).",
    ["kind", "outcome"],
)

# The hot-path tallies (flushed into the metrics above).
FRAMES_SENT = prometheus.tally_counter(_FRAMES_SENT)
FRAMES_COALESCED = prometheus.tally_counter(_FRAMES_COALESCED)
LAG = prometheus.tally_histogram(_LAG)
REPAIRED_BEHIND = RESYNC_REPAIRS.labels("behind")
REPAIRED_REBUILT = RESYNC_REPAIRS.labels("rebuilt")

# Close codes with a label of their own (RFC 6455 and PROTOCOL.md §4); any other is "other",
# and a connection that ended without one (cancelled, the process stopping) is "none".
KNOWN_CLOSE_CODES = frozenset({1000, 1001, 1005, 1006, 1011, 1012, 4001, 4003, 4008})


def close_code_label(code: object) -> str:
    if code is None:
        return "none"
    if isinstance(code, int) and not isinstance(code, bool) and code in KNOWN_CLOSE_CODES:
        return str(code)
    return "other"


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
    weakref.WeakKeyDictionary()
)


async def _flush_forever() -> None:
    while True:
        await asyncio.sleep(FLUSH_INTERVAL)
        prometheus.flush()


def connection_opened() -> None:
    CONNECTIONS.inc()
    CONNECTIONS_OPENED.inc()
    loop = asyncio.get_running_loop()
    if loop not in _flushers:
        _flushers[loop] = loop.create_task(_flush_forever(), name="metrics-flush")


def connection_ended() -> None:
    CONNECTIONS.dec()


def connection_closed(code: object) -> None:
    CLOSES.labels(close_code_label(code)).inc()


def state_delivered(message: dict[str, Any]) -> None:
    """A layer state message handed to a connection: its publish-to-deliver lag."""
    updated_at = message.get("updated_at")
    if isinstance(updated_at, int | float):
        LAG.observe(max(0.0, time.time() - updated_at / 1000))


# (kind, outcome) -> its child of PROGRESS_REQUESTS: ``labels()`` takes a lock and checks the
# labels on every call, the progress endpoints count every answer.
_progress_children: dict[tuple[str, str], Any] = {}


def progress_request(kind: str, outcome: str) -> None:
    try:
        child = _progress_children[kind, outcome]
    except KeyError:
        child = _progress_children[kind, outcome] = PROGRESS_REQUESTS.labels(kind, outcome)
    child.inc()
