"""Settings for every process (ASGI server, workers, management commands, tests).

Everything is read from the environment with safe development defaults. There is one file on
purpose: behaviour that differs between environments is switched by environment variables,
never by a second settings module. ``DJANGO_ENV`` is ``dev`` (default), ``test`` or ``prod``;
outside ``dev``/``test`` the process refuses to start with an unsafe configuration.

Service addresses (``DATABASE_URL``, ``REDIS_URL``, ``AWS_ENDPOINT_URL``) are resolved by
:mod:`project.devservices` when unset, so a developer machine with PostgreSQL and Redis on
their default ports needs no configuration at all.
"""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from domains.common import logcontext
from project import devservices

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DJANGO_ENV = env.str("DJANGO_ENV", default="dev")
if DJANGO_ENV not in {"dev", "test", "prod"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be dev, test or prod, not {DJANGO_ENV!r}")
IS_PROD = DJANGO_ENV == "prod"

# Which kind of process this is decides how it holds database connections (see
# docs/adr/0002-bounded-database-connections.md). manage.py sets "worker" for run_worker.
PROCESS_ROLE = env.str("ACADEMY_PROCESS", default="web")
if PROCESS_ROLE not in {"web", "worker"}:
    raise ImproperlyConfigured(f"ACADEMY_PROCESS must be web or worker, not {PROCESS_ROLE!r}")

_DEV_SECRET_KEY = "dev-insecure-secret-key-do-not-use-in-production-0123456789"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=not IS_PROD)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
# Browser origins allowed to open /ws/v1/ (PROTOCOL.md §4).
REALTIME_ALLOWED_ORIGINS = env.list(
    "REALTIME_ALLOWED_ORIGINS", default=["http://127.0.0.1:8000", "http://localhost:8000"]
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "django_guid",
    "realtime",
    "domains.tenants",
    "domains.students",
    "domains.jobs",
    "domains.videos",
    "domains.messaging",
    "workers",
]

# Django's classic middleware as sync-only subclasses (project/middleware.py): under ASGI the
# chain runs on one worker thread per request instead of two thread hops per class.
MIDDLEWARE = [
    "django_guid.middleware.guid_middleware",
    "project.middleware.SecurityMiddleware",
    "project.middleware.SessionMiddleware",
    "project.middleware.LocaleMiddleware",
    "project.middleware.CommonMiddleware",
    "project.middleware.CsrfViewMiddleware",
    "project.middleware.AuthenticationMiddleware",
    "project.middleware.MessageMiddleware",
    "project.middleware.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# Production names its database and Redis explicitly (refused below otherwise); only dev and
# tests fall back to local or embedded services, and only they look for them.
_DATABASE_URL = env.str("DATABASE_URL", default="")
if not _DATABASE_URL and not IS_PROD:
    _DATABASE_URL = devservices.default_database_url()
DATABASES: dict[str, dict[str, Any]] = {
    "default": env.db_url_config(_DATABASE_URL) if _DATABASE_URL else {}
}
# Parallel test runs on one server need distinct test databases.
if env.str("TEST_DATABASE_NAME", default=""):
    DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME")}
DB_POOL_MIN_SIZE = env.int("DB_POOL_MIN_SIZE", default=2)
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=10)
DB_POOL_TIMEOUT = env.float("DB_POOL_TIMEOUT", default=10.0)
if PROCESS_ROLE == "web" and env.bool("DB_POOL", default=True):
    # ASGI runs sync ORM code on a thread pool; persistent per-thread connections piled up until
    # PostgreSQL refused clients. A process-wide psycopg pool bounds them (ADR 0002).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": DB_POOL_MIN_SIZE,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": DB_POOL_TIMEOUT,
    }
elif PROCESS_ROLE == "worker" and env.bool("WORKER_DB_POOL", default=True):
    # Worker processes keep their connections in a pool too, so a job's claim and finish do
    # not each start a PostgreSQL backend (~8 ms, twice per job). The worker narrows the pool
    # to its slots + 1 before its first query (workers/connections.py, ADR 0002); the health
    # check on each checkout keeps a PostgreSQL restart from failing a claim. The timeout is
    # short: a full pool never waits (nothing holds more than slots + 1 at once), so waiting
    # means PostgreSQL does not answer, and the supervisor must not stall on it.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 0,
        "max_size": env.int("WORKER_DB_POOL_MAX_SIZE", default=6),  # the largest cap + 1
        "timeout": env.float("WORKER_DB_POOL_TIMEOUT", default=2.0),
        "max_idle": env.float("WORKER_DB_POOL_MAX_IDLE", default=300.0),
    }
else:
    # Worker processes run at most `slots` jobs and hold no connection while a job runs.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=15)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if PROCESS_ROLE == "worker" or not env.bool("DB_POOL", default=True):
    # Lets operators (and the connection-budget test) count a worker's connections in
    # pg_stat_activity: at most slots + 1 per process (docs/workers.md).
    DATABASES["default"].setdefault("OPTIONS", {})["application_name"] = env.str(
        "DB_APPLICATION_NAME", default="academy-worker"
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "tenants.User"

if DJANGO_ENV == "test":
    # Test fixtures create many users; PBKDF2 at full cost only slows the suite down.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Redis ----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if not REDIS_URL and not IS_PROD:
    REDIS_URL = devservices.default_redis_url()
# redis-py 8 defaults to a 5 s socket timeout and a 100-connection pool that raises when
# exhausted. Commands get an explicit timeout; pub/sub connections block without one.
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=5.0)
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=2.0)
# One process runs at most a few dozen concurrent commands (progress reads, publishes); the
# pool is sized to that, and a blocking pool waits instead of failing when it is full.
REDIS_MAX_CONNECTIONS = env.int("REDIS_MAX_CONNECTIONS", default=50)
REDIS_HEALTH_CHECK_INTERVAL = env.int("REDIS_HEALTH_CHECK_INTERVAL", default=30)
REALTIME_KEY_PREFIX = env.str("REALTIME_KEY_PREFIX", default="")
# PROTOCOL.md §2: live keys expire 6 h after their last write, terminal status hashes 24 h
# after they end (docs/adr/0012-terminal-states-expire-after-a-day.md: under volatile-lru a key
# without TTL can never be evicted). 0 keeps terminal hashes forever: only for a Redis sized
# for every job ever run.
REALTIME_RUNNING_TTL = env.int("REALTIME_RUNNING_TTL", default=21_600)
REALTIME_TERMINAL_TTL = env.int("REALTIME_TERMINAL_TTL", default=86_400)
# At most one progress publish per topic per interval; status changes are never delayed.
REALTIME_PROGRESS_INTERVAL = env.float("REALTIME_PROGRESS_INTERVAL", default=0.2)
# WebSocket limits (PROTOCOL.md §4).
REALTIME_MAX_SUBSCRIPTIONS = env.int("REALTIME_MAX_SUBSCRIPTIONS", default=100)
REALTIME_MAX_FRAME_BYTES = env.int("REALTIME_MAX_FRAME_BYTES", default=4096)
REALTIME_RATE_PER_SECOND = env.float("REALTIME_RATE_PER_SECOND", default=20.0)
REALTIME_RATE_BURST = env.int("REALTIME_RATE_BURST", default=60)
# Seconds before expiry at which a connection is told its token is expiring.
REALTIME_TOKEN_WARNING = env.int("REALTIME_TOKEN_WARNING", default=60)
# Every consumer re-reads the seq of its topics this often (and at once after Redis returns).
REALTIME_RESYNC_INTERVAL = env.float("REALTIME_RESYNC_INTERVAL", default=5.0)
# A connection whose pending frames could not be sent for this long is closed.
REALTIME_SEND_TIMEOUT = env.float("REALTIME_SEND_TIMEOUT", default=10.0)
# Open WebSockets per (tenant, user) (audit F19): past it a new one closes with 4008. Each is
# an entry in a Redis sorted set that expires REALTIME_CONNECTION_TTL seconds after its last
# refresh (every third of it), so a process that dies leaks nothing for longer than that.
REALTIME_MAX_CONNECTIONS_PER_USER = env.int("REALTIME_MAX_CONNECTIONS_PER_USER", default=10)
REALTIME_CONNECTION_TTL = env.int("REALTIME_CONNECTION_TTL", default=90)
# Browsers always send Origin; non-browser clients (scripts, mobile) may not.
REALTIME_ALLOW_MISSING_ORIGIN = env.bool("REALTIME_ALLOW_MISSING_ORIGIN", default=True)

# The ASGI process holds thousands of long-lived connection objects. CPython's full collections
# walk all of them: at 5,000 connections the fan-out benchmark saw 0.2-1.1 s pauses of the
# event loop. So the server process freezes what startup built (never garbage) and collects
# the young generation less often, which makes full collections rare (project/asgi.py).
ASGI_GC_TUNING = env.bool("ASGI_GC_TUNING", default=DJANGO_ENV != "test")
ASGI_GC_THRESHOLDS = tuple(env.list("ASGI_GC_THRESHOLDS", cast=int, default=[50_000, 20, 100]))

# Throttle counters (domains/tenants/throttles.py) live in Redis, shared by every process.
# The default cache stays local: nothing else is meant to depend on Redis through it.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{REALTIME_KEY_PREFIX}cache",
        "OPTIONS": {
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
            "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
        },
    },
}

CHANNEL_LAYERS = {
    "default": {
        # channels-redis' RedisPubSubChannelLayer, delivering state frames directly to the
        # consumers (realtime/layer.py).
        "BACKEND": "realtime.layer.RealtimeChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    # The layer's subscriber blocks on its connection between messages.
                    "socket_timeout": None,
                    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
                    "health_check_interval": REDIS_HEALTH_CHECK_INTERVAL,
                    "max_connections": REDIS_MAX_CONNECTIONS,
                }
            ],
            "prefix": f"{REALTIME_KEY_PREFIX}asgi",
        },
    }
}

# --- Metrics (realtime/metrics.py, workers/metrics.py; docs/development.md "Metrics") -------
# Prometheus exposition at GET /metrics (project/metrics.py). Multiprocess mode is the library's
# own switch, the environment variable PROMETHEUS_MULTIPROC_DIR (set before start; one tmpfs
# directory per host, shared by its ASGI servers and workers, emptied at boot).
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=True)
# Peers that may scrape: the host's own agent. Requests through the proxy never may.
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
# When set, scrapers must also send "Authorization: Bearer <METRICS_TOKEN>".
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- AWS (SQS, S3) --------------------------------------------------------------------------
AWS_REGION = env.str("AWS_REGION", default="ap-northeast-2")
# Set to moto's server locally and in tests; empty means the real AWS endpoints.
AWS_ENDPOINT_URL = env.str(
    "AWS_ENDPOINT_URL", default="" if IS_PROD else devservices.default_aws_endpoint_url()
)

# --- Queues and workers (docs/workers.md) ---------------------------------------------------
# One SQS queue per kind, each with a dead-letter queue (redrive after SQS_MAX_RECEIVE_COUNT
# receives). Names are f"{SQS_QUEUE_PREFIX}{kind}" and "…-dlq" unless SQS_QUEUE_NAME_<KIND> is
# set; SQS_QUEUE_URL_<KIND> skips the name lookup (queues managed elsewhere, e.g. CloudFormation).
SQS_QUEUE_PREFIX = env.str("SQS_QUEUE_PREFIX", default="academy-")
SQS_MAX_RECEIVE_COUNT = env.int("SQS_MAX_RECEIVE_COUNT", default=3)
SQS_WAIT_TIME_SECONDS = env.int("SQS_WAIT_TIME_SECONDS", default=20)
SQS_RETENTION_SECONDS = env.int("SQS_RETENTION_SECONDS", default=345_600)  # 4 days
# AWS keeps a standard queue's enqueue time on redrive: the DLQ must retain messages longer.
SQS_DLQ_RETENTION_SECONDS = env.int("SQS_DLQ_RETENTION_SECONDS", default=1_209_600)  # 14 days
# The AI inference limit of the seeds; the AI kind's maximum run time.
INFERENCE_MAX_SECONDS = env.float("INFERENCE_MAX_SECONDS", default=3600)
# The seeds' hard limit on one video encode; the video kind's maximum run time.
VIDEO_HARD_LIMIT_SECONDS = env.float("VIDEO_HARD_LIMIT_SECONDS", default=14_400)


def _worker_queue(
    kind: str, *, visibility: int, max_runtime: float, max_visibility: int
) -> dict[str, object]:
    """One kind's queue and timing settings, each overridable as WORKER_<KIND>_<NAME>."""
    upper = kind.upper()
    name = env.str(f"SQS_QUEUE_NAME_{upper}", default=f"{SQS_QUEUE_PREFIX}{kind}")
    visibility = env.int(f"WORKER_{upper}_VISIBILITY_TIMEOUT", default=visibility)
    return {
        "name": name,
        "url": env.str(f"SQS_QUEUE_URL_{upper}", default=""),
        "dlq_name": env.str(f"SQS_DLQ_NAME_{upper}", default=f"{name}-dlq"),
        # Visibility of a received message, renewed by the heartbeat up to max_visibility.
        "visibility_timeout": visibility,
        # The database lease ends before the message reappears, so a takeover never waits.
        "lease_seconds": env.int(
            f"WORKER_{upper}_LEASE_SECONDS",
            default=visibility - 60 if visibility > 120 else max(1, visibility // 2),
        ),
        "heartbeat_interval": env.float(
            f"WORKER_{upper}_HEARTBEAT_INTERVAL", default=visibility / 2
        ),
        "max_runtime": env.float(f"WORKER_{upper}_MAX_RUNTIME", default=max_runtime),
        "max_visibility": env.int(f"WORKER_{upper}_MAX_VISIBILITY", default=max_visibility),
    }


WORKER_QUEUES = {
    # AI: visibility 3600 s, lease 3540 s, inference limit 3600 s (seeds). The heartbeat may
    # stretch visibility to 3720 s so the time limit always fires before a message reappears.
    "ai": _worker_queue(
        "ai",
        visibility=3600,
        max_runtime=INFERENCE_MAX_SECONDS,
        max_visibility=int(INFERENCE_MAX_SECONDS) + 120,
    ),
    # Video (docs/adr/0013-video-encodes-run-as-jobs.md): the seeds' hard 4 h is the run
    # limit; visibility is extended by the heartbeat up to 4 h + the lease margin (60 s), far
    # under SQS's 12 h. The encode stops itself VIDEO_ENCODE_MARGIN_SECONDS before that.
    "video": _worker_queue(
        "video",
        visibility=900,
        max_runtime=VIDEO_HARD_LIMIT_SECONDS,
        max_visibility=int(VIDEO_HARD_LIMIT_SECONDS) + 60,
    ),
    "messaging": _worker_queue("messaging", visibility=300, max_runtime=1800, max_visibility=1920),
}
# SIGTERM: running jobs get this long to finish before their messages are released.
WORKER_SHUTDOWN_GRACE = env.float("WORKER_SHUTDOWN_GRACE", default=25.0)
# A failed attempt's message comes back after this many seconds times its receive count.
WORKER_RETRY_DELAY = env.int("WORKER_RETRY_DELAY", default=10)
# How often a worker looks into its dead-letter queue for jobs left unfinished (0 = never).
WORKER_DLQ_SWEEP_INTERVAL = env.float("WORKER_DLQ_SWEEP_INTERVAL", default=60.0)
# How often terminal states that could not be published (Redis down) are retried.
WORKER_REPUBLISH_INTERVAL = env.float("WORKER_REPUBLISH_INTERVAL", default=2.0)
# The supervisor's clock: heartbeats and time limits are checked this often.
WORKER_TICK = env.float("WORKER_TICK", default=0.5)
# How often a worker reads its running jobs' cancel requests from Redis (one pipelined read;
# 0 = only at heartbeats, from the database, which also covers a Redis that lost the flag).
WORKER_CANCEL_CHECK_INTERVAL = env.float("WORKER_CANCEL_CHECK_INTERVAL", default=1.0)
# A worker started while SQS cannot be reached retries its queue lookup, waiting 1 s, then twice
# as long each time, up to this many seconds between tries (workers/runner.py).
WORKER_START_BACKOFF_MAX = env.float("WORKER_START_BACKOFF_MAX", default=30.0)
# The outbox relay (manage.py relay_outbox, docs/adr/0011-the-job-row-is-the-outbox.md): how
# often it looks for unsent messages and unpublished terminal states, how many rows a pass
# takes, and how long a row is left to the process that committed it before the relay steps in.
OUTBOX_RELAY_INTERVAL = env.float("OUTBOX_RELAY_INTERVAL", default=1.0)
OUTBOX_RELAY_BATCH = env.int("OUTBOX_RELAY_BATCH", default=100)
OUTBOX_RELAY_GRACE = env.float("OUTBOX_RELAY_GRACE", default=10.0)
# When Redis went back in time (a restart from a dump, a promoted replica), the relay restores
# the terminal states recorded as published since the dataset's checkpoint, less this margin
# for clock skew between Redis and PostgreSQL (docs/adr/0011-the-job-row-is-the-outbox.md).
OUTBOX_REWIND_MARGIN = env.float("OUTBOX_REWIND_MARGIN", default=60.0)

# --- Jobs API -------------------------------------------------------------------------------
JOB_PAYLOAD_MAX_BYTES = env.int("JOB_PAYLOAD_MAX_BYTES", default=65_536)
# A request body other than uploaded files (JSON, form fields): refused past this many bytes,
# before it is parsed. 4x the payload limit: escapes (\uXXXX) and whitespace make the
# request's JSON longer than the compact payload that JOB_PAYLOAD_MAX_BYTES measures.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int(
    "DATA_UPLOAD_MAX_MEMORY_SIZE", default=4 * JOB_PAYLOAD_MAX_BYTES
)
# Quotas (docs/SECURITY.md): unfinished (PENDING or PROCESSING) jobs one user, and one tenant,
# may have at once. Past either, a new job answers 429 quota_exceeded with this Retry-After.
JOB_ACTIVE_MAX_PER_USER = env.int("JOB_ACTIVE_MAX_PER_USER", default=20)
JOB_ACTIVE_MAX_PER_TENANT = env.int("JOB_ACTIVE_MAX_PER_TENANT", default=200)
JOB_QUOTA_RETRY_AFTER = env.int("JOB_QUOTA_RETRY_AFTER", default=30)

# --- Excel import (students) ---------------------------------------------------------------
# Checked in the API before anything is stored or queued; the file itself goes to S3.
EXCEL_IMPORT_MAX_BYTES = env.int("EXCEL_IMPORT_MAX_BYTES", default=10 * 1024 * 1024)
EXCEL_IMPORT_MAX_ROWS = env.int("EXCEL_IMPORT_MAX_ROWS", default=20_000)
# Workbook bombs (audit F7), checked from the zip's central directory before openpyxl parses.
# A 20,000-row file with all 11 columns filled measured 11.6-18.6 MB uncompressed, its largest
# part 18.6 MB, ~100,000 distinct shared strings (the figures: domains/students/xlsx.py).
EXCEL_IMPORT_MAX_UNCOMPRESSED_BYTES = env.int(
    "EXCEL_IMPORT_MAX_UNCOMPRESSED_BYTES", default=40 * 1024 * 1024
)
EXCEL_IMPORT_MAX_PART_BYTES = env.int("EXCEL_IMPORT_MAX_PART_BYTES", default=32 * 1024 * 1024)
EXCEL_IMPORT_MAX_SHARED_STRINGS = env.int("EXCEL_IMPORT_MAX_SHARED_STRINGS", default=250_000)
EXCEL_IMPORT_BUCKET = env.str("EXCEL_IMPORT_BUCKET", default="academy-imports")

# --- Videos (ARCHITECTURE.md "Video encoding", docs/adr/0013-video-encodes-run-as-jobs.md) ----
VIDEO_BUCKET = env.str("VIDEO_BUCKET", default="academy-videos")
# A single presigned PUT carries at most 5 GiB (S3's single-upload ceiling).
VIDEO_UPLOAD_MAX_BYTES = env.int("VIDEO_UPLOAD_MAX_BYTES", default=5 * 1024**3)
# Accepted sources: the content type the browser declares and the file name's extension.
VIDEO_UPLOAD_TYPES = {
    "video/mp4": (".mp4", ".m4v"),
    "video/quicktime": (".mov",),
    "video/webm": (".webm",),
    "video/x-matroska": (".mkv",),
}
# How long a presigned upload URL stays valid (the browser starts the PUT at once).
VIDEO_UPLOAD_URL_SECONDS = env.int("VIDEO_UPLOAD_URL_SECONDS", default=900)
# Playback URLs live this long plus twice the video's duration: a VOD player reads its
# variant playlist once, so its segment URLs must outlast a slow viewing.
VIDEO_PLAYBACK_URL_SECONDS = env.int("VIDEO_PLAYBACK_URL_SECONDS", default=600)
# The encode stops itself this long before the hard limit, leaving time to fail and clean up.
VIDEO_ENCODE_MARGIN_SECONDS = env.float("VIDEO_ENCODE_MARGIN_SECONDS", default=300)
# Per-attempt work directories go under this directory (the system's temp dir if empty).
VIDEO_WORK_ROOT = env.str("VIDEO_WORK_ROOT", default="")
# Free disk kept beyond what a job needs (source + estimated outputs), in bytes.
VIDEO_DISK_RESERVE_BYTES = env.int("VIDEO_DISK_RESERVE_BYTES", default=256 * 1024**2)
# x264 threads per ffmpeg (0: ffmpeg decides); three encodes share a worker's cores.
VIDEO_ENCODE_THREADS = env.int("VIDEO_ENCODE_THREADS", default=0)
VIDEO_ENCODE_PRESET = env.str("VIDEO_ENCODE_PRESET", default="veryfast")

# --- Messaging ------------------------------------------------------------------------------
MESSAGING_MAX_RECIPIENTS = env.int("MESSAGING_MAX_RECIPIENTS", default=1000)
MESSAGING_SUBJECT_MAX_LENGTH = env.int("MESSAGING_SUBJECT_MAX_LENGTH", default=200)
MESSAGING_BATCH_SIZE = env.int("MESSAGING_BATCH_SIZE", default=50)
# Pause between batches: a send rate limit toward the mail provider (and a visible demo).
MESSAGING_SEND_INTERVAL = env.float("MESSAGING_SEND_INTERVAL", default=0.0)
# Who may mail external addresses, and how many (audit F23, docs/SECURITY.md). Students and
# parents may not create messaging jobs at all (domains/jobs/types.py). Per job: a teacher
# reaches a class, staff and admins the whole academy (MESSAGING_MAX_RECIPIENTS). Per UTC day,
# counted in Redis: recipients per user by role, and per tenant.
MESSAGING_TEACHER_MAX_RECIPIENTS = env.int("MESSAGING_TEACHER_MAX_RECIPIENTS", default=50)
MESSAGING_DAILY_RECIPIENTS = {
    "teacher": env.int("MESSAGING_TEACHER_DAILY_RECIPIENTS", default=200),
    "staff": env.int("MESSAGING_STAFF_DAILY_RECIPIENTS", default=5000),
    "admin": env.int("MESSAGING_ADMIN_DAILY_RECIPIENTS", default=5000),
}
MESSAGING_TENANT_DAILY_RECIPIENTS = env.int("MESSAGING_TENANT_DAILY_RECIPIENTS", default=20_000)

# --- Lists ----------------------------------------------------------------------------------
# GET /api/v1/jobs/ and GET /media/videos/ (PROTOCOL.md §5): rows per page unless the client
# asks for ``page_size``, and the most it may ask for (every row is one index entry read).
LIST_PAGE_SIZE = env.int("LIST_PAGE_SIZE", default=20)
LIST_PAGE_SIZE_MAX = env.int("LIST_PAGE_SIZE_MAX", default=100)
if not 1 <= LIST_PAGE_SIZE <= LIST_PAGE_SIZE_MAX:
    raise ImproperlyConfigured("LIST_PAGE_SIZE must be between 1 and LIST_PAGE_SIZE_MAX")

# --- Email ----------------------------------------------------------------------------------
_EMAIL_BACKENDS = {
    "dev": "django.core.mail.backends.console.EmailBackend",
    "test": "django.core.mail.backends.locmem.EmailBackend",
    "prod": "django.core.mail.backends.smtp.EmailBackend",
}
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=_EMAIL_BACKENDS[DJANGO_ENV])
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(BASE_DIR / ".run" / "emails"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="academy@localhost")

# --- Auth tokens ----------------------------------------------------------------------------
# Refresh rotates and carries the membership's token version (ADR 0014); an access token
# cannot be revoked, so its lifetime is the longest a removed member or a stolen token lasts.
ACCESS_TOKEN_LIFETIME = timedelta(seconds=env.int("ACCESS_TOKEN_LIFETIME_SECONDS", default=900))
REFRESH_TOKEN_LIFETIME = timedelta(seconds=env.int("REFRESH_TOKEN_LIFETIME_SECONDS", default=86400))
# Signs every access token; production refuses the development default and short keys.
JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default=SECRET_KEY)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": ACCESS_TOKEN_LIFETIME,
    "REFRESH_TOKEN_LIFETIME": REFRESH_TOKEN_LIFETIME,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_CLAIM": "user_id",
    "TOKEN_USER_CLASS": "domains.tenants.auth.TenantTokenUser",
    "UPDATE_LAST_LOGIN": False,
}

# Login, refresh and password change, per client address and per (tenant, user) (audit F12;
# domains/tenants/throttles.py). A whole class may log in from one school address at once,
# so the address rates are generous; the per-account ones brake guessing. Tests that check
# throttling set their own rates (override_settings); the others must not trip them.
_THROTTLE_DEFAULTS = {
    "login_ip": "60/min",
    "login_user": "10/min",
    "refresh_ip": "120/min",
    "refresh_user": "20/min",
    "password_ip": "20/min",
    "password_user": "5/min",
}
AUTH_THROTTLE_RATES = {
    scope: env.str(
        f"THROTTLE_{scope.upper()}", default="10000/min" if DJANGO_ENV == "test" else rate
    )
    for scope, rate in _THROTTLE_DEFAULTS.items()
}
# Proxies in front of the app that append to X-Forwarded-For (nginx: 1). 0 trusts only the
# peer address; never leave it unset, since DRF would then trust a client-written header.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1 if IS_PROD else 0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "domains.tenants.auth.StatelessTenantJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["domains.tenants.auth.IsTenantMember"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON bodies only, unless a view says otherwise (the job upload reads multipart too);
    # bodies over DATA_UPLOAD_MAX_MEMORY_SIZE are refused before they are read (F18).
    "DEFAULT_PARSER_CLASSES": ["domains.common.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "project.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "project.api.exception_handlers.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "academy-realtime API",
    # The full description is set by project.api.schema (it points to docs/PROTOCOL.md).
    "DESCRIPTION": "Job and video progress for the academy platform.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from drf-spectacular-sidecar, served by this process (project/api/docs.py):
    # no CDN, no outside request (the validator badge would call one).
    "SWAGGER_UI_DIST": "/api/docs/assets",
    "SWAGGER_UI_FAVICON_HREF": "/api/docs/assets/favicon-32x32.png",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # The video statuses appear in several components (the record, the list row): one name.
    "ENUM_NAME_OVERRIDES": {"VideoStatusEnum": "domains.videos.models.VideoStatus.choices"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "project.api.schema.add_plain_django_operations",
    ],
}

# --- I18n -----------------------------------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
LANGUAGES = [("en", _("English")), ("ko", _("Korean"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# The demo page at /demo/ (frontend-client/demo/), for `make demo`; never served in prod.
DEMO_ENABLED = env.bool("DEMO_ENABLED", default=not IS_PROD)

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".run" / "static"

# --- Logging --------------------------------------------------------------------------------
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": False,
    "RETURN_HEADER": True,
    "EXPOSE_HEADER": True,
    "UUID_LENGTH": 32,
}
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if IS_PROD else "text")
# uvicorn's per-WebSocket INFO lines (accepted, open, closed): off unless asked for.
LOG_WEBSOCKET_CONNECTIONS = env.bool("LOG_WEBSOCKET_CONNECTIONS", default=False)
# Every record made inside a job carries its id, tenant, attempt, kind and elapsed time.
logcontext.install()
# uvicorn --no-access-log (infra/asgi, devrun) leaves "uvicorn.access" without handlers and
# not propagating, before it imports the application. Keep it that way: uvicorn decides per
# connection whether to log each request by ``access_logger.hasHandlers()``, and giving it
# our handler below would turn the per-request access line back on (it cost ~6 % of a
# progress request's CPU; bench/http/RESULTS.md). With the access log on, it is redacted.
_uvicorn_access = logging.getLogger("uvicorn.access")
UVICORN_ACCESS_LOG = bool(_uvicorn_access.handlers) or _uvicorn_access.propagate

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "django_guid.log_filters.CorrelationId"},
        "redact_tokens": {"()": "project.logging.RedactTokens"},
        "websocket_connections": {
            "()": "project.logging.WebSocketConnectionLines",
            "enabled": LOG_WEBSOCKET_CONNECTIONS,
        },
    },
    "formatters": {
        "text": {
            "format": (
                "%(asctime)s %(levelname)-7s [%(correlation_id)s]%(job_context)s"
                " %(name)s: %(message)s"
            ),
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(correlation_id)s %(message)s",
            "rename_fields": {"correlation_id": "request_id", "levelname": "level"},
            # job_id, tenant_id, attempt, kind, duration_s are fields of their own in JSON.
            "reserved_attrs": [*logcontext.JSON_RESERVED_ATTRS, "job_context"],
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": sys.stderr,
            "filters": ["request_id", "redact_tokens"],
            "formatter": LOG_FORMAT,
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django_guid": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
        # uvicorn configures its own loggers (propagate off, handlers without our filters)
        # before it imports the application; these replace them once Django sets up, so its
        # "WebSocket /ws/v1/?token=..." and access lines are redacted too (audit F10).
        "uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # A logger's filters see only its own records, so this one sits on uvicorn.error.
        "uvicorn.error": {
            "handlers": ["console"],
            "level": "INFO",
            "propagate": False,
            "filters": ["websocket_connections"],
        },
        "uvicorn.access": {
            "handlers": ["console"] if UVICORN_ACCESS_LOG else [],
            "level": "INFO",
            "propagate": False,
        },
    },
}

# --- Safety checks --------------------------------------------------------------------------
if IS_PROD:
    _problems = []
    if SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        _problems.append("SECRET_KEY is the development default or shorter than 50 characters")
    if JWT_SIGNING_KEY == _DEV_SECRET_KEY or len(JWT_SIGNING_KEY) < 50:
        _problems.append(
            "JWT_SIGNING_KEY (SECRET_KEY when unset) is the development default"
            " or shorter than 50 characters"
        )
    if not _DATABASE_URL:
        _problems.append("DATABASE_URL is not set")
    if not REDIS_URL:
        _problems.append("REDIS_URL is not set")
    if DEBUG:
        _problems.append("DEBUG is on")
    if "*" in ALLOWED_HOSTS:
        _problems.append("ALLOWED_HOSTS contains '*'")
    if _problems:
        raise ImproperlyConfigured("Refusing to start in prod: " + "; ".join(_problems))
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
