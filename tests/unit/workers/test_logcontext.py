"""Job fields on every log record made inside a job scope, in text and JSON formats."""

from __future__ import annotations

import io
import json
import logging
import threading

from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from domains.common import logcontext

LOGGER = logging.getLogger("tests.logcontext")


def _capture(formatter: logging.Formatter) -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(lambda record: setattr(record, "correlation_id", "req") or True)
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    return handler, stream


def test_text_lines_inside_a_job_name_it_and_lines_outside_do_not() -> None:
    # given a handler with the text format
    handler, stream = _capture(logging.Formatter(settings.LOGGING["formatters"]["text"]["format"]))

    # when lines are logged before, inside and after a job scope
    try:
        LOGGER.info("before")
        with logcontext.job_scope(job_id="j-1", tenant_id=4, kind="ai") as context:
            LOGGER.info("claimed")
            context.attempt = 2
            LOGGER.info("running")
        LOGGER.info("after")
    finally:
        LOGGER.removeHandler(handler)

    # then only the lines inside name the job, with the attempt once it is known
    before, claimed, running, after = stream.getvalue().splitlines()
    assert "job=" not in before
    assert "job=" not in after
    assert "job=j-1 tenant=4 attempt=- kind=ai t=" in claimed
    assert "job=j-1 tenant=4 attempt=2 kind=ai t=" in running


def test_json_lines_carry_the_job_as_fields() -> None:
    # given a handler with the JSON format
    options = settings.LOGGING["formatters"]["json"]
    formatter = JsonFormatter(
        options["format"],
        rename_fields=options["rename_fields"],
        reserved_attrs=options["reserved_attrs"],
    )
    handler, stream = _capture(formatter)

    # when a line is logged inside a job scope
    try:
        with logcontext.job_scope(job_id="j-2", tenant_id=5, kind="video", attempt=1):
            LOGGER.info("encoding")
    finally:
        LOGGER.removeHandler(handler)

    # then the job is in separate fields, with the duration
    line = json.loads(stream.getvalue())
    assert (line["job_id"], line["tenant_id"], line["attempt"], line["kind"]) == (
        "j-2",
        5,
        1,
        "video",
    )
    assert isinstance(line["duration_s"], float)
    assert "job_context" not in line


def test_a_job_scope_does_not_leak_into_other_threads() -> None:
    # given a handler recording each line's job context
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.job_context)  # type: ignore[method-assign]
    LOGGER.addHandler(handler)

    # when another thread logs while this one is in a job scope
    try:
        with logcontext.job_scope(job_id="j-3", tenant_id=1, kind="messaging"):
            thread = threading.Thread(target=LOGGER.info, args=("elsewhere",))
            thread.start()
            thread.join()
            LOGGER.info("here")
    finally:
        LOGGER.removeHandler(handler)

    # then only this thread's line names the job
    assert seen[0] == ""
    assert "job=j-3" in seen[1]
