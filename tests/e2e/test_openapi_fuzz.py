"""The OpenAPI document against a live server: schemathesis with every check, three callers.

The server is a real ASGI process (tests/e2e/conftest.py) with PostgreSQL, Redis and moto's
SQS and S3. Schemathesis (pinned in pyproject) reads /api/schema/ from it and sends what the
schema allows and what it forbids, as an admin, a student and a second tenant's admin. Any
failure of any check (an undocumented status, a valid request refused, an invalid one
accepted, a body or header that breaks its schema, a 500) fails the test. The run is bounded
(examples per operation) and deterministic (fixed seed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from domains.tenants import repository
from domains.tenants.services import auth_token_issue
from domains.videos.models import Video
from realtime.identity import Role
from tests.support.e2e import BASE_DIR, Stack

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    # A run takes ~45 s on an idle machine; the subprocess has its own bound (below).
    pytest.mark.timeout(900),
]

PASSWORD = "fuzz-password-1"
MAX_EXAMPLES = 25
SEED = 16
CONFIG = Path(__file__).with_name("schemathesis.toml")


def _token(tenant_code: str, username: str) -> str:
    return auth_token_issue(tenant_code=tenant_code, username=username, password=PASSWORD).access


def _fuzz(
    stack: Stack, token: str, report: Path, *, video_id: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **stack.env,
        "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        "FUZZ_VIDEO_ID": video_id,
    }
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(CONFIG),
            "run",
            f"{stack.url}/api/schema/?format=json",
            "--url",
            stack.url,
            "--checks",
            "all",
            "--mode",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--generation-deterministic",
            "--workers",
            "1",
            "--no-color",
            "--header",
            f"Authorization: Bearer {token}",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.parametrize(
    ("tenant_code", "username"),
    [("alpha", "alpha-admin"), ("alpha", "alpha-student"), ("beta", "beta-admin")],
)
def test_schemathesis_finds_no_failure(
    stack: Stack, tmp_path: Path, tenant_code: str, username: str
) -> None:
    # given: members of two tenants, and a video of the first one's admin
    admins = {}
    for code in ("alpha", "beta"):
        tenant = repository.tenant_upsert(code=code, name=code.title())
        admins[code] = repository.member_upsert(
            tenant.id, username=f"{code}-admin", password=PASSWORD, role=Role.ADMIN
        )
    alpha = repository.tenant_upsert(code="alpha", name="Alpha")
    repository.member_upsert(
        alpha.id, username="alpha-student", password=PASSWORD, role=Role.STUDENT
    )
    video = Video.objects.create(
        tenant=alpha,
        session_id=5,
        file_key="raw/v.mp4",
        status="READY",
        hls_path="hls/v/index.m3u8",
        duration=12.5,
        created_by=admins["alpha"],
    )
    report = tmp_path / "report.json"

    # when
    run = _fuzz(stack, _token(tenant_code, username), report, video_id=str(video.video_id))

    # then
    print(run.stdout[-8000:])  # noqa: T201 - shown when the test fails
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(report.read_text())
    cases = summary["test_cases"]
    print(  # noqa: T201 - the figures of the run, with -rA or on failure
        f"{username}: {summary['operations']['tested']} operations, {cases['generated']} cases, "
        f"{cases['unique_failures']} failures, {len(summary['errors'])} errors"
    )
    assert summary["operations"]["tested"] == summary["operations"]["total"]
    assert cases["generated"] > 0
    assert (cases["unique_failures"], summary["errors"]) == (0, [])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
