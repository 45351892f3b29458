"""A feed subscription's bookkeeping (realtime/feeds.py) and the feed names (realtime/keys.py):
per-item order, coalescing, turns, and the bounds that keep a slow client's memory small."""

from __future__ import annotations

import re
import uuid

import pytest

from realtime import feeds
from realtime.feeds import FeedSubscription, feed_of
from realtime.keys import Feed, KeySpace, Topic, TopicKind

EPOCH = 1_764_554_400_123


def _item() -> str:
    return str(Topic.job(uuid.uuid4()))


def _feed() -> FeedSubscription:
    return FeedSubscription(feed=Feed.JOBS, group="tenant.1.feed.jobs", ready=True)


def _drain(feed: FeedSubscription) -> list[str]:
    frames = []
    while feed.has_frames:
        frames.append(feed.take())
    return frames


def test_an_item_takes_only_positions_after_the_last_one_queued() -> None:
    # given a feed that queued an item at seq 3
    feed, item = _feed(), _item()
    assert feed.offer(item, (EPOCH, 3), False, "s3", progress_only=False)

    # when older, equal and newer positions arrive, and one of a larger epoch at seq 1
    offered = [
        feed.offer(item, position, False, f"{position}", progress_only=False)
        for position in [(EPOCH, 2), (EPOCH, 3), (EPOCH, 4), (EPOCH + 1, 1)]
    ]

    # then only the newer ones are taken, the rebuilt state (new epoch) included
    assert offered == [False, False, True, True]
    assert feed.sent(item) == (EPOCH + 1, 1)


def test_progress_is_replaced_in_place_and_status_changes_queue_in_order() -> None:
    # given two items with frames waiting
    feed, a, b = _feed(), _item(), _item()
    feed.offer(a, (EPOCH, 1), False, "a1 PROCESSING", progress_only=False)
    feed.offer(b, (EPOCH, 1), False, "b1 PROCESSING", progress_only=False)

    # when the first reports progress three times, then ends
    feed.offer(a, (EPOCH, 2), False, "a2 10%", progress_only=True)
    feed.offer(a, (EPOCH, 3), False, "a3 20%", progress_only=True)
    feed.offer(a, (EPOCH, 4), False, "a4 30%", progress_only=True)
    feed.offer(b, (EPOCH, 2), False, "b2 50%", progress_only=True)
    feed.offer(a, (EPOCH, 5), True, "a5 DONE", progress_only=False)

    # then each item's status changes leave in order, its progress coalesced away by the end,
    # and the items take turns
    assert _drain(feed) == ["a1 PROCESSING", "b1 PROCESSING", "a5 DONE", "b2 50%"]
    assert feed.queued == 0


def test_a_busy_item_keeps_its_place_in_line() -> None:
    # given three items with one progress frame each, the first queued first
    feed = _feed()
    items = [_item() for _ in range(3)]
    for item in items:
        feed.offer(item, (EPOCH, 2), False, f"{item} 1%", progress_only=True)

    # when the first reports progress again before anything is sent
    feed.offer(items[0], (EPOCH, 3), False, f"{items[0]} 2%", progress_only=True)

    # then it is still first, with its newest frame only
    assert _drain(feed) == [f"{items[0]} 2%", f"{items[1]} 1%", f"{items[2]} 1%"]


def test_past_the_queue_limit_an_item_keeps_only_its_newest_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a feed that queues at most four frames, holding one item's three status changes
    monkeypatch.setattr(feeds, "MAX_QUEUED_FRAMES", 4)
    feed, item, other = _feed(), _item(), _item()
    for seq, status in [(1, "PENDING"), (2, "PROCESSING"), (3, "PROCESSING+")]:
        feed.offer(item, (EPOCH, seq), False, status, progress_only=False)
    feed.offer(other, (EPOCH, 1), False, "other", progress_only=False)

    # when that item ends while the client still reads nothing
    feed.offer(item, (EPOCH, 4), True, "DONE", progress_only=False)

    # then its waiting frames collapse to the terminal state, and the count follows
    assert feed.queued == 2
    assert _drain(feed) == ["DONE", "other"]


def test_frames_wait_until_the_feed_is_confirmed() -> None:
    # given a feed not confirmed to its client yet, with a frame waiting
    feed = FeedSubscription(feed=Feed.JOBS, group="g")
    feed.offer(_item(), (EPOCH, 1), False, "first", progress_only=False)

    # when / then it has nothing to send until it is ready
    assert not feed.has_frames
    feed.ready = True
    assert _drain(feed) == ["first"]


def test_running_items_are_swept_and_items_that_ended_are_remembered_for_order() -> None:
    # given a running item and one that ended
    feed, running, ended = _feed(), _item(), _item()
    feed.offer(running, (EPOCH, 2), False, "r", progress_only=True)
    feed.offer(ended, (EPOCH, 1), False, "e1", progress_only=False)
    feed.offer(ended, (EPOCH, 2), True, "e2", progress_only=False)

    # when / then the sweep sees the running one only, and a late state of the ended one is
    # still dropped
    assert [(str(topic), position) for topic, position in feed.watched()] == [(running, (EPOCH, 2))]
    assert not feed.offer(ended, (EPOCH, 1), False, "late", progress_only=False)


def test_the_memory_of_items_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # given small bounds
    monkeypatch.setattr(feeds, "LIVE_MEMORY", 3)
    monkeypatch.setattr(feeds, "ENDED_MEMORY", 2)
    feed = _feed()

    # when more items run and end than the bounds hold
    live = [_item() for _ in range(5)]
    done = [_item() for _ in range(4)]
    for item in live:
        feed.offer(item, (EPOCH, 1), False, "x", progress_only=False)
    for item in done:
        feed.offer(item, (EPOCH, 1), True, "x", progress_only=False)

    # then the oldest of each are forgotten
    assert [str(topic) for topic, _ in feed.watched()] == live[-3:]
    assert [feed.sent(item) is not None for item in done] == [False, False, True, True]


def test_a_string_that_names_no_topic_is_dropped() -> None:
    # given / when / then
    assert not _feed().offer("job:nope", (EPOCH, 1), False, "x", progress_only=False)


def test_each_topic_kind_has_its_feed() -> None:
    # given / when / then
    assert feed_of(_item()) is Feed.JOBS
    assert feed_of(str(Topic.video(uuid.uuid4()))) is Feed.VIDEOS
    assert feed_of("student:1") is None
    assert [Feed.of(TopicKind.JOB), Feed.of(TopicKind.VIDEO)] == [Feed.JOBS, Feed.VIDEOS]
    assert [Feed.JOBS.kind, Feed.VIDEOS.kind] == [TopicKind.JOB, TopicKind.VIDEO]


@pytest.mark.parametrize("raw", ["jobs", "videos"])
def test_feed_names_are_exact(raw: str) -> None:
    # given / when / then a feed is named exactly, and nothing else names one
    assert Feed.named(raw) == Feed(raw)
    for other in (raw.upper(), f" {raw}", raw[:-1], f"{raw}:1", None, 1, ["jobs"]):
        assert Feed.named(other) is None


def test_feed_groups_and_channels_are_tenant_scoped_and_valid_group_names() -> None:
    # given a key space with a deployment prefix
    space = KeySpace(prefix="staging:", layer_prefix="staging:asgi")

    # when the feeds' group and channel are built for the largest tenant id
    group = space.feed_group(2**62, Feed.VIDEOS)
    channel = space.feed_channel(3, Feed.JOBS)

    # then they name the tenant, are valid Channels group names, and cannot be a topic's
    assert group == f"tenant.{2**62}.feed.videos"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", group)
    assert len(group) < 100
    assert channel == "staging:asgi__group__tenant.3.feed.jobs"
    assert space.feed_channel(4, Feed.JOBS) != channel
