"""Serves the demo pages and the built client library (``make demo`` only, never in prod).

The pages live in ``frontend-client/demo/``: ``/demo/`` watches one job, ``/demo/dashboard/``
shows the tenant's running and recent jobs and videos on one socket (the tenant feeds for staff
and admin, one watch per item for a teacher); the library is ``frontend-client/dist/``, built
by ``npm run build`` (``make demo`` and ``make test`` build it). ``/demo/sample-students.xlsx``
is a small student workbook to try the Excel import with: made in memory, no database.
"""

from __future__ import annotations

import io

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.urls import path, re_path
from django.views.static import serve
from openpyxl import Workbook

from domains.jobs.uploads import XLSX_CONTENT_TYPE

CLIENT_DIR = settings.BASE_DIR / "frontend-client"
DEMO_DIR = CLIENT_DIR / "demo"
DIST_DIR = CLIENT_DIR / "dist"

SAMPLE_ROWS = 300
SAMPLE_HEADER = ("이름", "학부모 전화번호", "학생 전화번호", "학교", "학년", "성별")
_FAMILY = "김이박최정강조윤장임한오서신권황안송류홍"
_GIVEN = ("민준", "서연", "도윤", "하은", "시우", "지호", "서준", "지유", "예준", "수아", "하준")
_SCHOOLS = (("대치중", 2), ("역삼중", 3), ("휘문고", 1), ("숙명여고", 2))
# (row index, what makes the row fail): the failures path of the demo.
_BAD_ROWS = {
    17: "no name",
    64: "bad parent phone",
    128: "bad grade",
    201: "duplicate of the first row",
}


def sample_students_rows(count: int = SAMPLE_ROWS) -> list[tuple[object, ...]]:
    """Deterministic rows: importing the file twice shows the second run as unchanged."""
    rows: list[tuple[object, ...]] = []
    for i in range(count):
        name = _FAMILY[i % len(_FAMILY)] + _GIVEN[(i // len(_FAMILY)) % len(_GIVEN)]
        name += str(i // (len(_FAMILY) * len(_GIVEN)) + 1)
        school, grade = _SCHOOLS[i % len(_SCHOOLS)]
        row: list[object] = [
            name,
            f"010-{5000 + i // 100:04d}-{i % 10_000:04d}",
            f"010-{7000 + i // 100:04d}-{i % 10_000:04d}",
            school,
            grade,
            "남" if i % 2 else "여",
        ]
        bad = _BAD_ROWS.get(i)
        if bad == "no name":
            row[0] = None
        elif bad == "bad parent phone":
            row[1] = "02-123"
        elif bad == "bad grade":
            row[4] = "5학년"
        elif bad == "duplicate of the first row":
            row[0], row[1] = rows[0][0], rows[0][1]
        rows.append(tuple(row))
    return rows


def sample_students_xlsx(count: int = SAMPLE_ROWS) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("학생")
    sheet.append(SAMPLE_HEADER)
    for row in sample_students_rows(count):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def demo_sample(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(sample_students_xlsx(), content_type=XLSX_CONTENT_TYPE)
    response["Content-Disposition"] = 'attachment; filename="sample-students.xlsx"'
    return response


def demo_page(request: HttpRequest) -> FileResponse:
    return FileResponse((DEMO_DIR / "index.html").open("rb"), content_type="text/html")


def demo_dashboard(request: HttpRequest) -> FileResponse:
    return FileResponse((DEMO_DIR / "dashboard.html").open("rb"), content_type="text/html")


def demo_client(request: HttpRequest, path: str) -> HttpResponse:
    if not (DIST_DIR / "index.js").exists():
        raise Http404("The client library is not built: run `npm run build` in frontend-client/.")
    return serve(request, path, document_root=DIST_DIR)


urlpatterns = [
    path("demo/", demo_page, name="demo"),
    path("demo/dashboard/", demo_dashboard, name="demo-dashboard"),
    path("demo/sample-students.xlsx", demo_sample, name="demo-sample"),
    re_path(r"^demo/client/(?P<path>.+)$", demo_client),
    re_path(r"^demo/(?P<path>(?:demo|dashboard)\.(?:js|css))$", serve, {"document_root": DEMO_DIR}),
]
