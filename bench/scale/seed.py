"""Prepare the scale benchmark's private database and fixtures (a Django process of its own).

    python -m bench.scale.seed --users 10000 --out DIR

Migrates, creates the queues and buckets on moto, creates the academies (200 accounts each:
students, teachers, staff and one admin, in the model's shares) with their users and
memberships in bulk, and signs one access token per user as the token endpoint would
(user, tenant, role; a lifetime that outlasts the run). Writes ``DIR/seed.json``, the Excel
files the staff will import (distinct students in each) and the video the teachers upload
(a short lavfi clip made by Debian's ffmpeg).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

HEADER = ("이름", "학부모 전화번호", "전화번호", "학교", "학년", "성별", "메모")
TOKEN_LIFETIME = datetime.timedelta(hours=3)


def _roles(size: int, share: dict[str, float]) -> list[str]:
    staff = max(1, round(size * share["staff"]))
    teachers = max(1, round(size * share["teacher"]))
    students = max(0, size - staff - teachers)
    return ["admin"] + ["staff"] * (staff - 1) + ["teacher"] * teachers + ["student"] * students


def seed_users(
    users: int, users_per_tenant: int, share: dict[str, float]
) -> list[dict[str, object]]:
    from django.contrib.auth.hashers import make_password
    from rest_framework_simplejwt.tokens import AccessToken

    from domains.tenants.models import Tenant, TenantMembership, User

    unusable = make_password(None)  # nobody logs in: tokens are signed below
    tenants_out: list[dict[str, object]] = []
    left = users
    index = 0
    while left > 0:
        size = min(users_per_tenant, left)
        left -= size
        tenant = Tenant.objects.create(code=f"scale-{index:03d}", name=f"Scale Academy {index}")
        roles = _roles(size, share)
        created = User.objects.bulk_create(
            [User(username=f"s{index:03d}-{k:04d}", password=unusable) for k in range(len(roles))]
        )
        TenantMembership.objects.bulk_create(
            [
                TenantMembership(tenant=tenant, user=user, role=role)
                for user, role in zip(created, roles, strict=True)
            ]
        )
        members = []
        for user, role in zip(created, roles, strict=True):
            token = AccessToken()
            token["user_id"] = user.pk
            token["tenant_id"] = tenant.pk
            token["role"] = role
            token.set_exp(lifetime=TOKEN_LIFETIME)
            members.append({"user_id": user.pk, "role": role, "token": str(token)})
        tenants_out.append({"tenant_id": tenant.pk, "code": tenant.code, "users": members})
        index += 1
    return tenants_out


def workbooks(out: Path, count: int, rows: int) -> list[str]:
    from openpyxl import Workbook

    paths = []
    for n in range(count):
        book = Workbook(write_only=True)
        sheet = book.create_sheet()
        sheet.append(list(HEADER))
        for i in range(rows):
            sheet.append(
                [f"학생{n:03d}{i:04d}", f"010{n:04d}{i:04d}", None, "대치중", 2, "남", None]
            )
        buffer = io.BytesIO()
        book.save(buffer)
        path = out / f"students-{n:03d}.xlsx"
        path.write_bytes(buffer.getvalue())
        paths.append(str(path))
    return paths


def video(out: Path, seconds: int) -> str:
    path = out / "lecture.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=320x180:rate=25:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
    )
    return str(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--users-per-tenant", type=int, default=200)
    parser.add_argument("--share", default='{"student": 0.88, "teacher": 0.09, "staff": 0.03}')
    parser.add_argument("--workbooks", type=int, default=40)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--video-seconds", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    call_command("create_queues", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    tenants = seed_users(args.users, args.users_per_tenant, json.loads(args.share))
    seed = {
        "tenants": tenants,
        "fixtures": {
            "xlsx": workbooks(args.out, args.workbooks, args.rows),
            "video": video(args.out, args.video_seconds),
        },
    }
    (args.out / "seed.json").write_text(json.dumps(seed))
    print(f"seeded {sum(len(t['users']) for t in tenants)} users in {len(tenants)} tenants")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
