"""Every rule of PROTOCOL.md §2, against real Redis, through the publish path workers use."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis
from django.test import override_settings

from realtime import store
from realtime.keys import Topic
from realtime.state import RESULT_MAX_BYTES, Change, InvalidChange, Progress
from tests.support.tokens import ALPHA, BETA

RUNNING = Change(status="PROCESSING", attempt=1)


def _keys(topic: Topic, tenant_id: int = ALPHA) -> tuple[str, str]:
    space = store.keyspace()
    return space.status_key(tenant_id, topic), space.progress_key(tenant_id, topic)


def _start(topic: Topic, **extra: Any) -> None:
    store.publish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo", **extra))


def test_each_accepted_change_adds_one_to_seq_and_publishes_the_document(
    topic: Topic, listen: Any
) -> None:
    # given a raw listener on a new topic's group channel
    listener = listen(ALPHA, topic)

    # when three changes are published
    results = [
        store.publish(ALPHA, topic, Change(status="PENDING", owner_id=7, job_type="demo")),
        store.publish(ALPHA, topic, RUNNING),
        store.publish(ALPHA, topic, Change(progress=Progress(percent=42, step="importing"))),
    ]

    # then each adds one to seq, and the listener gets each document as the frame
    assert [r.seq for r in results] == [1, 2, 3]
    messages = listener.messages()
    assert [m["seq"] for m in messages] == [1, 2, 3]
    assert messages[-1]["type"] == "realtime.state"
    assert messages[-1]["topic"] == str(topic)
    frame = json.loads(messages[-1]["frame"])
    assert frame["type"] == "state"
    assert frame["progress"]["percent"] == 42
    assert frame["progress"]["step"] == "importing"
    assert frame["job_type"] == "demo"
    assert frame["status"] == "PROCESSING"
    assert frame["updated_at"] == pytest.approx(time.time() * 1000, abs=5000)
    assert results[-1].document == {k: v for k, v in frame.items() if k != "type"}


def test_a_late_progress_after_done_is_a_no_op(topic: Topic, listen: Any) -> None:
    # given a job that is DONE, and a listener
    _start(topic)
    store.publish(ALPHA, topic, RUNNING)
    done = store.publish(ALPHA, topic, Change(status="DONE", result={"sent": 3}))
    listener = listen(ALPHA, topic)

    # when a late progress change arrives
    late = store.publish(ALPHA, topic, Change(progress=Progress(percent=80)))

    # then it is refused as terminal, the current state comes back and nothing is published
    assert not late.accepted
    assert late.reason == "terminal"
    assert late.seq == done.seq
    assert late.document == done.document  # the current state comes back
    assert listener.messages() == []


def test_a_duplicate_terminal_is_a_no_op(topic: Topic) -> None:
    # given a FAILED job
    _start(topic)
    first = store.publish(ALPHA, topic, Change(status="FAILED", error="boom"))

    # when it fails again
    again = store.publish(ALPHA, topic, Change(status="FAILED", error="boom again"))

    # then the second terminal is a no-op and the first error stays
    assert (again.accepted, again.reason, again.seq) == (False, "terminal", first.seq)
    assert again.document is not None
    assert again.document["error"] == "boom"


def test_an_event_from_an_older_attempt_is_ignored(topic: Topic) -> None:
    # given a job on attempt 2
    _start(topic)
    store.publish(ALPHA, topic, Change(status="PROCESSING", attempt=2))

    # when attempt 1 reports DONE
    stale = store.publish(ALPHA, topic, Change(status="DONE", attempt=1))

    # then the stale event is ignored
    assert (stale.accepted, stale.reason) == (False, "stale_attempt")
    assert store.snapshot(ALPHA, topic).status == "PROCESSING"  # type: ignore[union-attr]


def test_percent_never_goes_backwards_within_an_attempt(topic: Topic) -> None:
    # given a running job at 60 %
    _start(topic)
    store.publish(ALPHA, topic, RUNNING)
    store.publish(ALPHA, topic, Change(progress=Progress(percent=60)))

    # when it reports 40 %
    back = store.publish(ALPHA, topic, Change(progress=Progress(percent=40)))

    # then the step back is refused
    assert (back.accepted, back.reason) == (False, "percent_backwards")


def test_a_new_attempt_starts_its_progress_afresh(topic: Topic, r: redis.Redis) -> None:
    # given a job at 70 % on attempt 1
    _start(topic)
    store.publish(
        ALPHA,
        topic,
        Change(status="PROCESSING", attempt=1, progress=Progress(percent=70, step="b")),
    )

    # when attempt 2 starts at 5 %
    retry = store.publish(
        ALPHA, topic, Change(status="PROCESSING", attempt=2, progress=Progress(percent=5))
    )

    # then its progress starts afresh
    assert retry.accepted
    assert retry.document["progress"]["percent"] == 5  # type: ignore[index]
    assert retry.document["progress"]["step"] is None  # type: ignore[index]


def test_status_never_moves_backwards(topic: Topic) -> None:
    # given a running job
    _start(topic)
    store.publish(ALPHA, topic, RUNNING)

    # when it reports PENDING again
    back = store.publish(ALPHA, topic, Change(status="PENDING", attempt=1))

    # then the step back is refused
    assert (back.accepted, back.reason) == (False, "backwards")


def test_an_identical_change_publishes_nothing(topic: Topic, listen: Any) -> None:
    # given a running job and a listener
    _start(topic)
    store.publish(ALPHA, topic, RUNNING)
    listener = listen(ALPHA, topic)

    # when the same change arrives again
    same = store.publish(ALPHA, topic, RUNNING)

    # then nothing is published
    assert (same.accepted, same.reason, same.seq) == (False, "unchanged", 2)
    assert listener.messages() == []


def test_a_progress_change_for_an_unknown_topic_creates_nothing(
    topic: Topic, r: redis.Redis
) -> None:
    # given a topic nothing was ever published on
    # when a progress change arrives for it
    result = store.publish(ALPHA, topic, Change(progress=Progress(percent=10)))

    # then it is refused and no key is created
    assert (result.accepted, result.reason, result.document) == (False, "not_found", None)
    assert r.exists(*_keys(topic)) == 0


def test_unknown_statuses_and_bad_percents_are_refused_before_redis(topic: Topic) -> None:
    # given a new topic
    # when/then a video status on a job, or 101 %, is refused before Redis is asked
    with pytest.raises(InvalidChange):
        store.publish(ALPHA, topic, Change(status="READY"))  # a video status on a job
    with pytest.raises(InvalidChange):
        store.publish(ALPHA, topic, Change(progress=Progress(percent=101)))


@override_settings(REALTIME_TERMINAL_TTL=0)
def test_ttl_slides_while_running_and_is_removed_on_terminal_when_terminal_ttl_is_0(
    topic: Topic, r: redis.Redis
) -> None:
    # given a new PENDING job, with no terminal TTL in the settings
    status_key, progress_key = _keys(topic)
    _start(topic)

    # then its status key has the 6 h TTL and no progress yet
    assert 21_590 <= r.ttl(status_key) <= 21_600
    assert r.exists(progress_key) == 0  # PENDING has no progress yet

    # when it runs after its TTL dropped, then its TTL slides back
    r.expire(status_key, 100)
    store.publish(
        ALPHA, topic, Change(status="PROCESSING", attempt=1, progress=Progress(percent=1))
    )
    assert 21_590 <= r.ttl(status_key) <= 21_600  # slid back to 6 h
    assert 21_590 <= r.ttl(progress_key) <= 21_600

    # when it is DONE, then the TTL and the progress hash are gone
    store.publish(ALPHA, topic, Change(status="DONE"))
    assert r.ttl(status_key) == -1  # 0: no TTL on terminal
    assert r.exists(progress_key) == 0  # progress hash removed


def test_terminal_status_hashes_expire_after_a_day_by_default(topic: Topic, r: redis.Redis) -> None:
    # given a PENDING job and the default terminal TTL
    _start(topic)

    # when it fails
    store.publish(ALPHA, topic, Change(status="FAILED", error="x"))

    # then its state expires after the setting
    assert 86_390 <= r.ttl(_keys(topic)[0]) <= 86_400


@pytest.mark.parametrize(
    ("size", "in_redis"), [(RESULT_MAX_BYTES, True), (RESULT_MAX_BYTES + 1, False)]
)
def test_results_over_10_kib_stay_out_of_redis(
    topic: Topic, r: redis.Redis, size: int, in_redis: bool
) -> None:
    # given a PENDING job and a result of the parametrized size
    _start(topic)
    result = {"blob": "x" * (size - len('{"blob":""}'))}
    assert len(json.dumps(result, separators=(",", ":")).encode()) == size

    # when it is DONE with that result
    done = store.publish(ALPHA, topic, Change(status="DONE", result=result))

    # then the result is in Redis only up to 10 KiB, else the document points to the database
    document = done.document
    assert document is not None
    assert document["result_in_db"] is (not in_redis)
    assert document["result"] == (result if in_redis else None)
    assert (r.hget(_keys(topic)[0], "result") is not None) is in_redis


def test_tenants_do_not_share_state(topic: Topic, r: redis.Redis, listen: Any) -> None:
    # given a listener on beta's group for the topic
    beta_listener = listen(BETA, topic)

    # when alpha's job with that topic id starts
    _start(topic)

    # then beta has no key, no snapshot and no message
    assert r.exists(_keys(topic, BETA)[0]) == 0
    assert store.snapshot(BETA, topic) is None
    assert beta_listener.messages() == []


def test_the_owner_is_set_once(topic: Topic) -> None:
    # given a job owned by user 7
    _start(topic)

    # when a change names another owner
    store.publish(ALPHA, topic, Change(status="PROCESSING", attempt=1, owner_id=999))

    # then the owner stays 7
    assert store.snapshot(ALPHA, topic).owner_id == 7  # type: ignore[union-attr]


def test_video_topics_carry_hls_path_duration_and_session(r: redis.Redis) -> None:
    # given a video of session 2**62 + 1 (beyond a double's exact integers) that is
    # processing at 50 %, and a later change naming another session (never applied)
    import uuid

    video = Topic.video(uuid.uuid4())
    session = 2**62 + 1
    store.publish(ALPHA, video, Change(status="UPLOADED", owner_id=7, session_id=session))
    store.publish(
        ALPHA, video, Change(status="PROCESSING", attempt=1, progress=Progress(percent=50))
    )

    # when it is READY with its HLS path and duration
    ready = store.publish(
        ALPHA,
        video,
        Change(status="READY", hls_path="v/1/index.m3u8", duration=61.5, session_id=5),
    )

    # then the document is a video's, carrying both and the first session exactly
    assert ready.document == {
        "topic": str(video),
        "seq": 3,
        "status": "READY",
        "progress": None,
        "error": None,
        "cancel_requested": False,
        "hls_path": "v/1/index.m3u8",
        "duration": 61.5,
        "session_id": session,
        "updated_at": ready.document["updated_at"],  # type: ignore[index]
        "epoch": ready.epoch,
    }


def test_a_session_id_on_a_job_or_out_of_range_is_refused_before_redis() -> None:
    # given / when / then
    import uuid

    with pytest.raises(InvalidChange):
        store.publish(ALPHA, Topic.job(uuid.uuid4()), Change(status="PENDING", session_id=1))
    with pytest.raises(InvalidChange):
        store.publish(ALPHA, Topic.video(uuid.uuid4()), Change(status="UPLOADED", session_id=0))


@override_settings(REALTIME_KEY_PREFIX="iso:")
def test_the_key_prefix_isolates_deployments(topic: Topic, r: redis.Redis) -> None:
    # given a key prefix in the settings
    store.keyspace.cache_clear()
    try:
        # when/then a job's keys carry the prefix and the unprefixed ones do not exist
        _start(topic)
        assert r.exists(f"iso:tenant:{ALPHA}:job:{topic.id}:status") == 1
        assert r.exists(f"tenant:{ALPHA}:job:{topic.id}:status") == 0
    finally:
        store.keyspace.cache_clear()


def test_the_script_is_loaded_once_and_reloaded_after_a_script_flush(
    topic: Topic, r: redis.Redis
) -> None:
    # given a started job and Redis's scripts flushed
    _start(topic)
    r.script_flush()

    # when the next change is published
    result = store.publish(ALPHA, topic, RUNNING)

    # then the script is loaded again and the change accepted
    assert result.accepted


def test_sync_publishing_reuses_one_persistent_connection(
    topic: Topic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers publish from plain sync code: never a new Redis connection per call."""

    # given a warm process client and a count of real connects
    _start(topic)  # warm: the process's client is connected
    connects: list[object] = []
    original = redis.connection.AbstractConnection.connect

    def counting_connect(self: redis.connection.AbstractConnection) -> None:
        if self._sock is None:  # type: ignore[attr-defined]  # redis-py calls connect() on every checkout; count real ones
            connects.append(self)
        original(self)

    monkeypatch.setattr(redis.connection.AbstractConnection, "connect", counting_connect)

    # when fifty changes are published from sync code
    for percent in range(1, 51):
        change = Change(status="PROCESSING", attempt=1, progress=Progress(percent=percent))
        assert store.publish(ALPHA, topic, change).accepted

    # then no new connection was opened
    assert connects == []
