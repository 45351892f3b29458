"""Every Redis key, pub/sub channel and Channels group name, built in one place.

Keys follow the seed documents: ``tenant:{tid}:job:{id}:status`` and ``…:progress`` (and the
same for videos), optionally behind a deployment-wide prefix. Channels group names allow only
``[A-Za-z0-9-_.]`` under 100 characters, so groups use dots: ``tenant.{tid}.job.{id}``, and
the tenant feeds ``tenant.{tid}.feed.jobs`` and ``tenant.{tid}.feed.videos``.
A key without the tenant namespace cannot be built here, which is the point.

Pure logic: no Django imports.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum


class TopicKind(StrEnum):
    JOB = "job"
    VIDEO = "video"


class InvalidTopic(ValueError):
    """A client-supplied topic string that names no topic."""


_TOPIC_RE = re.compile(r"(job|video):([0-9a-fA-F-]{32,36})")


class Feed(StrEnum):
    """A tenant feed (PROTOCOL.md §1): every state change of every job or video of the tenant.

    A feed's name is what the client subscribes to, exactly as written here; each state it
    delivers names its own ``job:<id>`` or ``video:<id>`` topic.
    """

    JOBS = "jobs"
    VIDEOS = "videos"

    @property
    def kind(self) -> TopicKind:
        return TopicKind.JOB if self is Feed.JOBS else TopicKind.VIDEO

    @classmethod
    def of(cls, kind: TopicKind) -> Feed:
        """The feed that carries every topic of ``kind``."""
        return cls.JOBS if kind is TopicKind.JOB else cls.VIDEOS

    @classmethod
    def named(cls, raw: object) -> Feed | None:
        """The feed ``raw`` names, or None (a topic, or nothing at all)."""
        if isinstance(raw, str) and raw in _FEED_NAMES:
            return cls(raw)
        return None


_FEED_NAMES = frozenset(feed.value for feed in Feed)


@dataclass(frozen=True, slots=True)
class Topic:
    """What a client watches: ``job:<uuid>`` or ``video:<uuid>``, relative to its tenant."""

    kind: TopicKind
    id: uuid.UUID

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def parse(cls, raw: object) -> Topic:
        if not isinstance(raw, str):
            raise InvalidTopic("topic must be a string")
        match = _TOPIC_RE.fullmatch(raw)
        if match is None:
            raise InvalidTopic(f"not a topic: {raw[:80]!r}")
        try:
            topic_id = uuid.UUID(match.group(2))
        except ValueError as exc:
            raise InvalidTopic(f"not a topic id: {match.group(2)!r}") from exc
        return cls(TopicKind(match.group(1)), topic_id)

    @classmethod
    def job(cls, job_id: uuid.UUID | str) -> Topic:
        return cls(TopicKind.JOB, job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(job_id))

    @classmethod
    def video(cls, video_id: uuid.UUID | str) -> Topic:
        vid = video_id if isinstance(video_id, uuid.UUID) else uuid.UUID(video_id)
        return cls(TopicKind.VIDEO, vid)


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Key and channel names under one deployment prefix (``REALTIME_KEY_PREFIX``).

    ``layer_prefix`` is the channel layer's own prefix (settings ``CHANNEL_LAYERS``); the group
    channel is where ``RedisPubSubChannelLayer`` listens for a group's messages.
    """

    prefix: str = ""
    layer_prefix: str = "asgi"

    def status_key(self, tenant_id: int, topic: Topic) -> str:
        return f"{self.prefix}tenant:{int(tenant_id)}:{topic.kind.value}:{topic.id}:status"

    def progress_key(self, tenant_id: int, topic: Topic) -> str:
        return f"{self.prefix}tenant:{int(tenant_id)}:{topic.kind.value}:{topic.id}:progress"

    def group(self, tenant_id: int, topic: Topic) -> str:
        return f"tenant.{int(tenant_id)}.{topic.kind.value}.{topic.id}"

    def group_channel(self, tenant_id: int, topic: Topic) -> str:
        # channels_redis.pubsub: RedisPubSubLoopLayer._get_group_channel_name
        return f"{self.layer_prefix}__group__{self.group(tenant_id, topic)}"

    def checkpoint_key(self) -> str:
        """The relay's checkpoint: which Redis server last wrote this dataset, and when. The
        one key of no tenant: it describes the dataset itself (lua/checkpoint.lua)."""
        return f"{self.prefix}realtime:checkpoint"

    def feed_group(self, tenant_id: int, feed: Feed) -> str:
        return f"tenant.{int(tenant_id)}.feed.{feed.value}"

    def feed_channel(self, tenant_id: int, feed: Feed) -> str:
        """Where the state script publishes every change of the feed's kind, once more."""
        return f"{self.layer_prefix}__group__{self.feed_group(tenant_id, feed)}"

    def connections_key(self, tenant_id: int, user_id: int) -> str:
        """A sorted set of one user's open WebSockets (member: connection id, score: expiry)."""
        return f"{self.prefix}tenant:{int(tenant_id)}:user:{int(user_id)}:connections"

    def messaging_daily_key(self, tenant_id: int, day: str, *, user_id: int | None = None) -> str:
        """Recipients mailed on ``day`` (``YYYYMMDD``, UTC) by one user, or by the tenant."""
        owner = f"user:{int(user_id)}:" if user_id is not None else ""
        return f"{self.prefix}tenant:{int(tenant_id)}:{owner}messaging:recipients:{day}"


def throttle_key(
    scope: str, *, ip: str | None = None, tenant: str | None = None, user: str = ""
) -> str:
    """A throttle counter's cache key (the cache adds the deployment prefix).

    Keys that name a user always name the tenant first: alpha's ``bob`` and beta's ``bob``
    are counted apart. ``tenant`` and ``user`` are opaque (ids or digests), never raw input.
    """
    if tenant is not None:
        return f"throttle:{scope}:tenant:{tenant}:user:{user}"
    if ip is None:
        raise ValueError("a throttle key names an address or a tenant and a user")
    return f"throttle:{scope}:ip:{ip}"
