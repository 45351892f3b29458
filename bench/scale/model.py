"""A written model of N users of the platform at the peak hour (pure Python, no Django).

Every figure here is an *assumption* (the platform has no production traffic to measure yet)
except where a comment names a measurement or the code: worker caps (``workers/config.py``),
the publish cadence of each handler, the client's ping and polling schedule
(``frontend-client/src``). ``derive(users)`` turns the assumptions into what the load test
drives and what docs/CAPACITY.md sizes: sockets, job arrivals, busy worker slots, state
publishes per second, frames delivered per second and HTTP requests per second.

    python -m bench.scale.model [--users 500 3000 10000]

prints the derivation as Markdown (the table in bench/scale/RESULTS.md).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field

# workers/config.py HARD_CONCURRENCY: the seeds' hard caps, one slot per instance in production.
CAPS = {"ai": 5, "video": 3, "messaging": 5}
# frontend-client: the client pings every 25 s; uvicorn pings every 20 s (infra/asgi unit).
CLIENT_PING_SECONDS = 25.0
SERVER_PING_SECONDS = 20.0
# realtime/connections.py: every open socket is refreshed every REALTIME_CONNECTION_TTL / 3 s.
CONNECTION_REFRESH_SECONDS = 30.0
# Fallback polling (PROTOCOL.md §6; bench/client/RESULTS.md): 1 s for 10 s, 2 s to 60 s, 3 s on.
FALLBACK_POLLS_FIRST_MINUTE = 10 + 25


@dataclass(frozen=True)
class Assumptions:
    """The population and its behaviour at the peak hour of a weekday evening."""

    # An academy (tenant) of 200 accounts: students with their parents' logins, teachers, staff.
    users_per_tenant: int = 200
    share: dict[str, float] = field(
        default_factory=lambda: {"student": 0.88, "teacher": 0.09, "staff": 0.03}
    )
    # Share of each role online at the peak hour (classes run in the evening).
    online: dict[str, float] = field(
        default_factory=lambda: {"student": 0.35, "teacher": 0.70, "staff": 0.90}
    )
    # One socket per online user: the worst case, every page holding one (today the client
    # opens a socket only while it watches something; live lists will hold one per page).
    sockets_per_online_user: float = 1.0
    # Jobs started per online user per peak hour, and their sizes.
    teacher_messages_per_hour: float = 0.5  # a notice to one class
    teacher_message_recipients: int = 30
    staff_messages_per_hour: float = 1.0  # a notice to the whole academy
    staff_message_recipients: int = 200
    staff_imports_per_hour: float = 0.25  # an Excel import of new students
    import_rows: int = 300
    # Recorded lectures: uploads per teacher per day (every teacher, online or not), of which
    # this share arrives in the peak hour (right after the evening classes).
    teacher_uploads_per_day: float = 0.3
    uploads_peak_hour_share: float = 0.2
    lecture_minutes: float = 50.0
    # Worker cadence (settings): messaging sends MESSAGING_BATCH_SIZE recipients per batch and
    # publishes after each; the load test paces batches like a provider's rate limit.
    messaging_batch: int = 10
    messaging_batch_seconds: float = 0.5
    # Excel import of import_rows rows: bench/excel/RESULTS.md (1,000 new rows 1.51 s with
    # the hash); events per import: read, classify, write per chunk, statuses (measured by
    # the load test as the final seq of the job's topic).
    import_seconds: float = 1.0
    import_events: int = 8
    # Video: ffmpeg reports progress every second (domains/videos/ffmpeg.py
    # DEFAULT_STATS_PERIOD); research/video_anchors.md §2.5 measured the 1080p ladder at
    # 1.6x realtime on 2 cores (veryfast, -threads 2).
    encode_speed: float = 1.6
    video_step_events: int = 8  # UPLOADED, PROCESSING, probing, uploading, finalizing, READY …
    # Who watches a running job: its owner, plus the online staff that have the tenant's live
    # job list open (admin and staff may watch every topic of their tenant).
    dashboard_share_of_online_staff: float = 0.5
    # Share of watches whose socket is down at any time, polling the progress endpoint instead.
    fallback_share: float = 0.05
    # Page views that read a list (jobs or videos), per online user: every 2 min for staff and
    # teachers, every 5 min for students (their video list).
    list_seconds: dict[str, float] = field(
        default_factory=lambda: {"student": 300.0, "teacher": 120.0, "staff": 120.0}
    )


@dataclass
class Kind:
    """One job kind at the peak hour."""

    arrivals_per_hour: float
    seconds_per_job: float
    events_per_job: float
    cap: int
    busy_slots: float = 0.0  # arrivals x duration (Little's law), before the cap
    served_per_hour: float = 0.0  # at most cap / duration
    backlog_growth_per_hour: float = 0.0  # arrivals the cap cannot serve
    events_per_second: float = 0.0


@dataclass
class Mix:
    users: int
    tenants: int
    population: dict[str, int]
    online: dict[str, int]
    online_total: int
    sockets: int
    watchers_per_topic: float
    kinds: dict[str, Kind]
    events_per_second: float
    state_frames_per_second: float
    pongs_per_second: float
    server_pings_per_second: float
    http: dict[str, float]
    http_per_second: float
    redis_background_per_second: float
    # Video by the day: encode slot-hours needed against what the cap offers (cap x 24 h).
    video_uploads_per_day: float
    video_slot_hours_per_day: float
    video_slot_hours_available: float


def _kind(arrivals: float, seconds: float, events: float, cap: int) -> Kind:
    kind = Kind(arrivals, seconds, events, cap)
    kind.busy_slots = arrivals * seconds / 3600
    kind.served_per_hour = min(arrivals, cap * 3600 / seconds) if seconds else arrivals
    kind.backlog_growth_per_hour = arrivals - kind.served_per_hour
    kind.events_per_second = kind.served_per_hour * events / 3600
    return kind


def derive(users: int, a: Assumptions | None = None) -> Mix:
    """What ``users`` users do at the peak hour, under assumptions ``a``."""
    a = a or Assumptions()
    tenants = max(1, math.ceil(users / a.users_per_tenant))
    population = {role: round(users * share) for role, share in a.share.items()}
    population["student"] = users - population["teacher"] - population["staff"]
    online = {role: round(n * a.online[role]) for role, n in population.items()}
    online_total = sum(online.values())
    sockets = round(online_total * a.sockets_per_online_user)

    teacher_batches = math.ceil(a.teacher_message_recipients / a.messaging_batch)
    staff_batches = math.ceil(a.staff_message_recipients / a.messaging_batch)
    teacher_msgs = online["teacher"] * a.teacher_messages_per_hour
    staff_msgs = online["staff"] * a.staff_messages_per_hour
    messages = teacher_msgs + staff_msgs
    # PENDING, PROCESSING, one progress per batch, DONE.
    msg_events = (teacher_msgs * (teacher_batches + 3) + staff_msgs * (staff_batches + 3)) / max(
        messages, 1e-9
    )
    msg_seconds = (
        teacher_msgs * teacher_batches * a.messaging_batch_seconds
        + staff_msgs * staff_batches * a.messaging_batch_seconds
    ) / max(messages, 1e-9)
    encode_seconds = a.lecture_minutes * 60 / a.encode_speed
    kinds = {
        "messaging": _kind(messages, msg_seconds, msg_events, CAPS["messaging"]),
        "ai": _kind(
            online["staff"] * a.staff_imports_per_hour,
            a.import_seconds,
            a.import_events,
            CAPS["ai"],
        ),
        "video": _kind(
            population["teacher"] * a.teacher_uploads_per_day * a.uploads_peak_hour_share,
            encode_seconds,
            encode_seconds + a.video_step_events,
            CAPS["video"],
        ),
    }
    events = sum(k.events_per_second for k in kinds.values())
    staff_per_tenant_online = online["staff"] / tenants
    watchers = 1 + staff_per_tenant_online * a.dashboard_share_of_online_staff
    jobs_per_second = sum(k.served_per_hour for k in kinds.values()) / 3600
    running = sum(min(k.busy_slots, k.cap) for k in kinds.values())
    http = {
        "lists": sum(online[r] / a.list_seconds[r] for r in online),
        # A fallback watcher polls ~35 times in its first minute, ~1/3 s after.
        "progress (fallback polling)": running
        * watchers
        * a.fallback_share
        * FALLBACK_POLLS_FIRST_MINUTE
        / 60,
        "detail (once per finished job, per owner)": jobs_per_second,
        "job creation and video upload calls": (
            (kinds["messaging"].arrivals_per_hour + kinds["ai"].arrivals_per_hour)
            + 2 * kinds["video"].arrivals_per_hour  # register + complete-upload
        )
        / 3600,
    }
    return Mix(
        users=users,
        tenants=tenants,
        population=population,
        online=online,
        online_total=online_total,
        sockets=sockets,
        watchers_per_topic=watchers,
        kinds=kinds,
        events_per_second=events,
        state_frames_per_second=events * watchers,
        pongs_per_second=sockets / CLIENT_PING_SECONDS,
        server_pings_per_second=sockets / SERVER_PING_SECONDS,
        http=http,
        http_per_second=sum(http.values()),
        redis_background_per_second=sockets / CONNECTION_REFRESH_SECONDS,
        video_uploads_per_day=population["teacher"] * a.teacher_uploads_per_day,
        video_slot_hours_per_day=population["teacher"]
        * a.teacher_uploads_per_day
        * encode_seconds
        / 3600,
        video_slot_hours_available=CAPS["video"] * 24.0,
    )


def as_dict(mix: Mix) -> dict[str, object]:
    return asdict(mix)


def markdown(mixes: list[Mix]) -> str:
    """The derivation for several sizes, one column each."""
    head = "| | " + " | ".join(f"{m.users:,} users" for m in mixes) + " |"
    rule = "| --- |" + " ---: |" * len(mixes)

    def row(label: str, values: list[str]) -> str:
        return f"| {label} | " + " | ".join(values) + " |"

    def each(fmt: str, get: object) -> list[str]:
        return [format(get(m), fmt) for m in mixes]  # type: ignore[operator]

    rows = [
        head,
        rule,
        row("academies (tenants, 200 accounts each)", each(",", lambda m: m.tenants)),
        row(
            "students / teachers / staff",
            [
                f"{m.population['student']:,} / {m.population['teacher']:,} / "
                f"{m.population['staff']:,}"
                for m in mixes
            ],
        ),
        row(
            "online at the peak hour (35 % / 70 % / 90 %)",
            each(",", lambda m: m.online_total),
        ),
        row("WebSockets (one per online user)", each(",", lambda m: m.sockets)),
        row(
            "watchers per running topic (owner + staff dashboards)",
            each(".1f", lambda m: m.watchers_per_topic),
        ),
    ]
    for name in ("messaging", "ai", "video"):
        rows += [
            row(
                f"{name}: jobs per hour / seconds per job",
                [
                    f"{m.kinds[name].arrivals_per_hour:,.1f} / {m.kinds[name].seconds_per_job:,.0f}"
                    for m in mixes
                ],
            ),
            row(
                f"{name}: busy slots (cap {CAPS[name]}) / backlog growth per hour",
                [
                    f"{k.busy_slots:,.2f} / {k.backlog_growth_per_hour:,.1f}"
                    for k in (m.kinds[name] for m in mixes)
                ],
            ),
        ]
    rows += [
        row(
            "state publishes per second (all kinds, at most the caps)",
            each(".2f", lambda m: m.events_per_second),
        ),
        row(
            "state frames delivered per second (x watchers)",
            each(".2f", lambda m: m.state_frames_per_second),
        ),
        row(
            "client pings answered (pong frames) per second",
            each(",.0f", lambda m: m.pongs_per_second),
        ),
        row(
            "server (protocol) pings per second", each(",.0f", lambda m: m.server_pings_per_second)
        ),
        row(
            "socket refreshes in Redis per second",
            each(",.0f", lambda m: m.redis_background_per_second),
        ),
    ]
    rows += [
        row("video: uploads per day", each(",.0f", lambda m: m.video_uploads_per_day)),
        row(
            "video: encode slot-hours needed per day / offered by the cap (3 x 24 h)",
            [
                f"{m.video_slot_hours_per_day:,.0f} / {m.video_slot_hours_available:,.0f}"
                for m in mixes
            ],
        ),
    ]
    for name in mixes[0].http:
        rows.append(row(f"HTTP: {name} per second", [f"{m.http[name]:.2f}" for m in mixes]))
    rows.append(row("HTTP requests per second, total", each(".1f", lambda m: m.http_per_second)))
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[500, 3000, 10000])
    args = parser.parse_args()
    print(markdown([derive(n) for n in args.users]))


if __name__ == "__main__":
    main()
