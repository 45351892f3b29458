"""The workers' metrics: what they are, and the one-line calls that record them.

Labels take fixed values only (the queue kind, an outcome, a step), never a job or tenant id.

- ``academy_worker_jobs_total{kind,outcome}``: attempts settled, outcome ``done``,
  ``failed``, ``cancelled``, ``timed_out``, ``retried``, ``released`` (shutdown), ``lost``
  (another attempt owns the job) or ``duplicate`` (a delivery of a finished job); each attempt
  counts once;
- ``academy_worker_job_duration_seconds{kind,outcome}`` (histogram): claim to settlement of
  the ``done``, ``failed``, ``cancelled`` and ``timed_out`` ones;
- ``academy_worker_busy_slots{kind}`` and ``academy_worker_slots{kind}`` (gauges, summed over
  live processes): slots holding a message, and slots;
- ``academy_worker_heartbeat_failures_total{kind,step}``: heartbeats that failed at the
  ``lease`` (database) or ``visibility`` (SQS) step;
- ``academy_outbox_backlog{part}`` (gauge, most recent): ``unsent`` job messages and
  ``unpublished`` terminal states the relay has to send;
- ``academy_dlq_depth{kind}`` (gauge, most recent): messages visible in the kind's dead-letter
  queue, read after each dead-letter sweep.

Every call here happens at most a few times per job, so it goes to ``prometheus-client``
directly (no tally; realtime/prometheus.py says why the ASGI hot paths differ).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from domains.jobs.outbox import OutboxBacklog

JOBS = Counter(
    "academy_worker_jobs", "Job attempts settled, by queue kind and outcome.", ["kind", "outcome"]
)
DURATION = Histogram(
    "academy_worker_job_duration_seconds",
    "From the claim to the settlement of an attempt that finished (done, failed, cancelled, "
    "timed_out).",
    ["kind", "outcome"],
    # Messaging takes seconds, AI jobs up to an hour, video encodes up to four.
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 10800, 14400),
)
BUSY_SLOTS = Gauge(
    "academy_worker_busy_slots",
    "Worker slots holding a message.",
    ["kind"],
    multiprocess_mode="livesum",
)
SLOTS = Gauge(
    "academy_worker_slots", "Worker slots (concurrency).", ["kind"], multiprocess_mode="livesum"
)
HEARTBEAT_FAILURES = Counter(
    "academy_worker_heartbeat_failures",
    "Heartbeats that failed, by step: lease (database) or visibility (SQS).",
    ["kind", "step"],
)
OUTBOX_BACKLOG = Gauge(
    "academy_outbox_backlog",
    "Rows the outbox relay has to send: unsent job messages, unpublished terminal states.",
    ["part"],
    multiprocess_mode="livemostrecent",
)
DLQ_DEPTH = Gauge(
    "academy_dlq_depth",
    "Messages visible in the dead-letter queue of a kind, read after each sweep.",
    ["kind"],
    multiprocess_mode="livemostrecent",
)

OUTCOMES = (
    "done",
    "failed",
    "cancelled",
    "timed_out",
    "retried",
    "released",
    "lost",
    "duplicate",
)
TIMED = frozenset({"done", "failed", "cancelled", "timed_out"})


def job_settled(kind: str, outcome: str, seconds: float | None = None) -> None:
    """One attempt settled; ``seconds`` (claim to settlement) for finished ones."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    JOBS.labels(kind, outcome).inc()
    if seconds is not None and outcome in TIMED:
        DURATION.labels(kind, outcome).observe(max(0.0, seconds))


def slot_taken(kind: str) -> None:
    BUSY_SLOTS.labels(kind).inc()


def slot_freed(kind: str) -> None:
    BUSY_SLOTS.labels(kind).dec()


def slots_opened(kind: str, count: int) -> None:
    SLOTS.labels(kind).inc(count)


def slots_closed(kind: str, count: int) -> None:
    SLOTS.labels(kind).dec(count)


def heartbeat_failed(kind: str, step: str) -> None:
    HEARTBEAT_FAILURES.labels(kind, step).inc()


def outbox_backlog(backlog: OutboxBacklog) -> None:
    OUTBOX_BACKLOG.labels("unsent").set(backlog.unsent)
    OUTBOX_BACKLOG.labels("unpublished").set(backlog.unpublished)


def dlq_depth(kind: str, depth: int) -> None:
    DLQ_DEPTH.labels(kind).set(depth)
