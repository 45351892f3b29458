"""The fixed state document both baselines answer (the no-op view and the raw ASGI app): what a
PROCESSING job's document looks like (PROTOCOL.md §3). No Django import: the raw app's process
must not have one."""

from __future__ import annotations

import json

NOOP_DOCUMENT = json.dumps(
    {
        "topic": "job:7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "seq": 2,
        "status": "PROCESSING",
        "progress": {
            "percent": 42,
            "step": "importing",
            "step_index": 3,
            "step_total": 5,
            "step_name_display": "학생 등록",
            "step_percent": 40,
            "remaining_seconds": 12,
        },
        "job_type": "excel_import",
        "error": None,
        "result": None,
        "result_in_db": False,
        "updated_at": 1763780000123,
    },
    ensure_ascii=False,
    separators=(",", ":"),
).encode()
