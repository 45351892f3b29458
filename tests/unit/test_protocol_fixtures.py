"""The golden wire-format fixtures (tests/fixtures/protocol/) against the Python protocol types.

Every valid sample must pass ``realtime.protocol``'s checks (exact key sets, value types, the
``Literal`` codes) and every invalid one must fail them; together with
tests/integration/realtime/test_protocol_fixtures_live.py, which compares the samples with
what the real script and consumer produce, the fixtures cannot drift from the server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest

from realtime import protocol

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "protocol"


def _samples(pattern: str) -> list[tuple[str, Any]]:
    found = []
    for path in sorted(FIXTURES.glob(pattern)):
        fixture = json.loads(path.read_text(encoding="utf-8"))
        assert set(fixture) == {"description", "frames"}, path.name
        assert isinstance(fixture["description"], str), path.name
        assert fixture["frames"], f"{path.name} holds no samples"
        found += [
            (f"{path.relative_to(FIXTURES)}[{i}]", s) for i, s in enumerate(fixture["frames"])
        ]
    assert found, f"no fixtures match {pattern}"
    return found


def _ids(samples: list[tuple[str, Any]]) -> list[str]:
    return [name for name, _sample in samples]


DOCUMENTS = _samples("document-*.json")
FRAMES = _samples("frame-*.json")
HTTP = _samples("http-*.json")
INVALID_DOCUMENTS = _samples("invalid/document*.json")
INVALID_FRAMES = _samples("invalid/frame-*.json")


@pytest.mark.parametrize(("name", "document"), DOCUMENTS, ids=_ids(DOCUMENTS))
def test_every_sampled_state_document_is_a_state_document(name: str, document: Any) -> None:
    # given a sampled state document / when it is checked against the types
    problems = protocol.check_state_document(document)

    # then nothing is wrong with it
    assert problems == []


@pytest.mark.parametrize(("name", "frame"), FRAMES, ids=_ids(FRAMES))
def test_every_sampled_server_frame_is_a_server_frame(name: str, frame: Any) -> None:
    # given a sampled WebSocket frame / when it is checked against the types
    problems = protocol.check_server_frame(frame)

    # then nothing is wrong with it
    assert problems == []


@pytest.mark.parametrize(("name", "answer"), HTTP, ids=_ids(HTTP))
def test_every_sampled_progress_answer_has_the_shape_of_its_status(name: str, answer: Any) -> None:
    # given a sampled HTTP answer of a progress endpoint
    assert set(answer) == {"status", "headers", "body"}
    assert answer["headers"]["Content-Type"] == "application/json"

    # when its body is checked: a state document on 200, the error shape otherwise
    if answer["status"] == 200:
        problems = protocol.check_state_document(answer["body"])
    else:
        problems = protocol.check_error_body(answer["body"])

    # then it has that shape
    assert problems == []


@pytest.mark.parametrize(("name", "document"), INVALID_DOCUMENTS, ids=_ids(INVALID_DOCUMENTS))
def test_every_invalid_document_sample_is_refused(name: str, document: Any) -> None:
    # given a progress body a client must not use / when it is checked
    problems = protocol.check_state_document(document)

    # then the check says why
    assert problems


@pytest.mark.parametrize(("name", "frame"), INVALID_FRAMES, ids=_ids(INVALID_FRAMES))
def test_every_invalid_frame_sample_is_refused(name: str, frame: Any) -> None:
    # given a frame a client must drop / when it is checked
    problems = protocol.check_server_frame(frame)

    # then the check says why
    assert problems


def test_the_samples_cover_every_frame_type_error_code_and_status() -> None:
    # given every valid sample
    frames = [frame for _name, frame in FRAMES]
    documents = [document for _name, document in DOCUMENTS]

    # when their frame types, error codes and statuses are collected
    types = {frame["type"] for frame in frames}
    codes = {frame["code"] for frame in frames if frame["type"] == "error"}
    statuses = {(doc["topic"].split(":")[0], doc["status"]) for doc in documents}

    # then each one the types allow is sampled, "unavailable" included
    assert types == {"state", *protocol._CONTROL_FRAMES}
    assert codes == set(get_args(protocol.ErrorCode))
    assert statuses == {
        *(("job", status) for status in get_args(protocol.JobStatus)),
        *(("video", status) for status in get_args(protocol.VideoStatus)),
    }


def test_the_checker_names_a_missing_an_extra_and_a_mistyped_key() -> None:
    # given a subscribed frame without its seq, with a stray key, and an error frame whose
    # code is not a protocol code
    topic = "job:7c9e6679-7425-40de-944b-e07fc1f90ae7"
    missing = {"type": "subscribed", "topic": topic, "epoch": 5}
    extra = {**missing, "seq": 1, "cursor": 5}
    wrong_code = {"type": "error", "topic": None, "code": "gone", "detail": "x"}

    # when they are checked
    problems = [protocol.check_server_frame(frame) for frame in (missing, extra, wrong_code)]

    # then each problem is named
    assert problems[0] == ["frame: missing 'seq'"]
    assert problems[1] == ["frame: unexpected 'cursor'"]
    assert problems[2][0].startswith("frame.code: 'gone' is not one of")
