"""Requests and database queries per watched job over a 60 s job (issue 5's benchmark).

Three ways a browser follows one job from start to DONE:
  * socket: the WebSocket carries every state; at DONE one detail call if the result is in the
    database (the client makes none otherwise);
  * fallback: the socket is down; the client polls the Redis-only progress endpoint on its
    adaptive schedule (taken from the built client, frontend-client/dist/schedule.js), then the
    detail call;
  * seed: the old page polled the DB detail endpoint every second.

Request counts come from the client's own schedule; queries per request are measured by
calling the real endpoints through Django with the queries captured. Run:
    python -m bench.client.requests_per_job
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("DJANGO_ENV", "test")

import django

JOB_SECONDS = 60
ROOT = Path(__file__).resolve().parents[2]


def poll_times(job_ms: int) -> list[int]:
    """When the built client polls during a job of job_ms (the first poll is due at 1 s)."""
    script = (
        "import('./dist/schedule.js').then(({pollInterval}) => {"
        f"  const out = []; let t = 0; for (;;) {{ t += pollInterval(t); if (t > {job_ms}) break;"
        "  out.push(t); } console.log(JSON.stringify(out)); });"
    )
    result = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=ROOT / "frontend-client",
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(result.stdout))


def queries_per_request() -> dict[str, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import (
        CaptureQueriesContext,
        setup_databases,
        setup_test_environment,
        teardown_databases,
    )

    from domains.jobs.models import Job, JobResult
    from domains.tenants import repository
    from domains.tenants.services import auth_token_issue
    from realtime import store
    from realtime.identity import Role
    from realtime.keys import Topic
    from realtime.state import Change, Progress

    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        tenant = repository.tenant_upsert(code="bench", name="Bench")
        secret = "pw-bench-1"  # noqa: S105 - a throwaway user in a throwaway database
        user = repository.member_upsert(tenant.id, username="b", password=secret, role=Role.STAFF)
        token = auth_token_issue(tenant_code="bench", username="b", password=secret).access
        job = Job.objects.create(
            tenant=tenant, job_type="messaging.send", status="DONE", created_by=user
        )
        JobResult.objects.create(job=job, data={"sent": 3})
        topic = Topic.job(job.job_id)
        store.publish(tenant.id, topic, Change(status="PENDING", owner_id=user.id, job_type="x"))
        store.publish(
            tenant.id, topic, Change(status="PROCESSING", attempt=1, progress=Progress(percent=5))
        )
        client = Client(headers={"Authorization": f"Bearer {token}"})
        counts = {}
        for name, url in {
            "progress": f"/api/v1/jobs/{job.job_id}/progress/",
            "detail": f"/api/v1/jobs/{job.job_id}/",
        }.items():
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url).status_code == 200
            counts[name] = len(captured)
        return counts
    finally:
        teardown_databases(old, verbosity=0)


def main() -> None:
    django.setup()
    polls = poll_times(JOB_SECONDS * 1000)
    per = queries_per_request()
    rows = [
        ("WebSocket (this design)", 0, 1, 1 * per["detail"]),
        (
            "fallback polling (socket down)",
            len(polls),
            1,
            len(polls) * per["progress"] + per["detail"],
        ),
        ("seed: detail every 1 s", 0, JOB_SECONDS, JOB_SECONDS * per["detail"]),
    ]
    lines = [
        f"One watched job lasting {JOB_SECONDS} s (requests from the client's schedule;",
        f"queries measured: progress endpoint {per['progress']} per request, "
        f"detail endpoint {per['detail']}).",
        "",
        "| path | progress requests | detail requests | DB queries |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {name} | {p} | {d} | {q} |" for name, p, d, q in rows]
    lines.append("")
    lines.append(
        f"The seed's page made {JOB_SECONDS * per['detail']} queries per watcher per minute; "
        f"this design makes {per['detail']} (one detail read at the end), with or without "
        "a socket. "
        "The socket path needs the detail call only when `result_in_db` is set or the page asks "
        "for the record."
    )
    text = "\n".join(lines)
    (Path(__file__).parent / "RESULTS.md").write_text(text + "\n")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
