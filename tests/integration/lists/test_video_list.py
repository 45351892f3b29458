"""GET /media/videos/: the tenant's videos, newest first, a keyset cursor page at a time."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from domains.videos.models import Video, VideoStatus
from tests.support.lists import MakeVideo
from tests.support.members import Member

URL = "/media/videos/"


def ids(body: dict[str, Any]) -> list[str]:
    return [row["video_id"] for row in body["results"]]


def video_ids(*videos: Video) -> list[str]:
    return [str(video.video_id) for video in videos]


def test_pages_run_newest_first_and_a_row_names_its_topic(
    alpha_staff: Member, make_video: MakeVideo
) -> None:
    # given three videos a minute apart
    videos = [make_video(alpha_staff, minutes=n, session_id=7) for n in range(3)]
    client = alpha_staff.client()

    # when the staff member reads two pages of two
    first = client.get(f"{URL}?page_size=2").json()
    second = client.get(first["next"]).json()

    # then the rows come newest first, each with what a client needs to watch it
    assert ids(first) == video_ids(videos[2], videos[1])
    assert ids(second) == video_ids(videos[0])
    assert second["next"] is None
    row = second["results"][0]
    video_id = videos[0].video_id
    assert row == {
        "video_id": str(video_id),
        "topic": f"video:{video_id}",
        "session_id": 7,
        "status": "UPLOADED",
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "progress_url": f"/media/videos/{video_id}/progress/",
        "detail_url": f"/media/videos/{video_id}/",
    }


def test_a_cursor_continues_where_its_page_ended_whatever_was_uploaded_since(
    alpha_staff: Member, make_video: MakeVideo
) -> None:
    # given three videos and the first page of one
    videos = [make_video(alpha_staff, minutes=n) for n in range(3)]
    client = alpha_staff.client()
    first = client.get(f"{URL}?page_size=1").json()

    # when a newer video arrives before the next page
    make_video(alpha_staff, minutes=30)
    second = client.get(first["next"]).json()

    # then the next page goes on from the cursor
    assert ids(second) == video_ids(videos[1])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("session_id=1", ["s1_ready", "s1_uploaded"]),
        ("session_id=1&status=READY", ["s1_ready"]),
        ("status=PROCESSING", ["s2_processing"]),
        ("status=PROCESSING&status=UPLOADED", ["s2_processing", "s1_uploaded"]),
        ("session_id=3", []),
    ],
)
def test_filters_narrow_the_list(
    alpha_staff: Member, make_video: MakeVideo, query: str, expected: list[str]
) -> None:
    # given videos of two sessions in three statuses
    made = {
        "s1_uploaded": make_video(alpha_staff, session_id=1, minutes=0),
        "s1_ready": make_video(alpha_staff, session_id=1, minutes=1, status=VideoStatus.READY),
        "s2_processing": make_video(
            alpha_staff, session_id=2, minutes=2, status=VideoStatus.PROCESSING
        ),
    }

    # when the list is read with the filters
    response = alpha_staff.client().get(f"{URL}?{query}")

    # then only the matching videos are listed, newest first
    assert response.status_code == 200
    assert ids(response.json()) == video_ids(*(made[name] for name in expected))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("session_id=abc", "session_id"),
        ("session_id=0", "session_id"),
        ("session_id=", "session_id"),
        (f"session_id={2**63}", "session_id"),
        ("status=DONE", "status"),
        ("cursor=%00", "cursor"),
        ("page_size=1000", "page_size"),
    ],
)
def test_a_bad_filter_is_refused_with_the_parameter_named(
    alpha_staff: Member, query: str, field: str
) -> None:
    # when the list is asked for with a value that is not valid
    response = alpha_staff.client().get(f"{URL}?{query}")

    # then it is a 400 in the error shape, naming the parameter
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert set(response.json()["fields"]) == {field}


@pytest.mark.parametrize(
    ("viewer", "sees"), [("alpha_staff", ["teacher", "staff"]), ("alpha_teacher", ["teacher"])]
)
def test_staff_see_the_tenant_a_teacher_their_own(
    request: pytest.FixtureRequest,
    alpha_staff: Member,
    alpha_teacher: Member,
    make_video: MakeVideo,
    viewer: str,
    sees: list[str],
) -> None:
    # given a video of staff and one of a teacher
    made = {
        "staff": make_video(alpha_staff, minutes=0),
        "teacher": make_video(alpha_teacher, minutes=1),
    }
    member: Member = request.getfixturevalue(viewer)

    # when the viewer reads the list
    body = member.client().get(URL).json()

    # then staff see both, the teacher only their own
    assert ids(body) == video_ids(*(made[name] for name in sees))


def test_a_second_tenant_sees_nothing_of_the_first(
    alpha_staff: Member, beta_staff: Member, make_video: MakeVideo
) -> None:
    # given alpha's videos in session 1
    make_video(alpha_staff, session_id=1)
    make_video(alpha_staff, session_id=1, minutes=1)

    # when beta's staff lists all videos and session 1's
    client = beta_staff.client()
    everything = client.get(URL).json()
    session = client.get(f"{URL}?session_id=1").json()

    # then beta sees none of them
    assert everything["results"] == []
    assert session["results"] == []


def test_every_page_costs_one_query_of_the_shown_columns(
    alpha_staff: Member, make_video: MakeVideo, django_assert_num_queries: Any
) -> None:
    # given forty videos
    for n in range(40):
        make_video(alpha_staff, minutes=n, status=VideoStatus.FAILED)
    client = alpha_staff.client()
    first = client.get(f"{URL}?page_size=5").json()

    # when a later page is read
    with CaptureQueriesContext(connection) as queries:
        client.get(first["next"])

    # then it is one query, selecting no file key, error, playlist or lease column
    assert len(queries.captured_queries) == 1
    selected = queries.captured_queries[0]["sql"].split(" FROM ")[0]
    for column in ("file_key", "error", "hls_path", "lease_owner", "duration"):
        assert f'"{column}"' not in selected
    assert selected.count('"videos_video".') == 6
    with django_assert_num_queries(1):
        client.get(f"{URL}?page_size=40")
