"""What the database records about a topic, as far as the push core needs to know it.

The push core knows no business model (ARCHITECTURE.md layers), yet an operator's
``publish_state`` must not write a state that contradicts the record (PROTOCOL.md §5a). The
apps that own topics register a lookup per topic kind in their ``AppConfig.ready``; this module
only holds the lookups and the one rule, :func:`contradiction`.

Pure logic: no Django imports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from realtime.keys import Topic, TopicKind


@dataclass(frozen=True, slots=True)
class Record:
    """A topic's database record: its status (in the Redis status vocabulary) and attempt."""

    status: str
    attempt: int


# (tenant id, topic) -> the record, or None when the tenant has no such job or video.
RecordLookup = Callable[[int, Topic], Record | None]

_lookups: dict[TopicKind, RecordLookup] = {}


class NoRecordLookup(LookupError):
    """No app registered a lookup for this kind of topic."""


def record_lookup_register(kind: TopicKind, lookup: RecordLookup) -> None:
    _lookups[kind] = lookup


def record_of(tenant_id: int, topic: Topic) -> Record | None:
    lookup = _lookups.get(topic.kind)
    if lookup is None:
        raise NoRecordLookup(f"no record lookup registered for {topic.kind.value} topics")
    return lookup(tenant_id, topic)


def contradiction(
    record: Record | None, *, tenant_id: int, topic: Topic, status: str, attempt: int | None
) -> str | None:
    """Why publishing ``status`` (and ``attempt``) would contradict the record, or None.

    A state agrees with its record when it names the recorded status and, if it names an
    attempt, the recorded attempt: the command may republish or add progress to the truth,
    never move a topic somewhere its record is not.
    """
    if record is None:
        return f"tenant {tenant_id} has no {topic.kind.value} {topic.id} in the database"
    if status != record.status:
        return f"the database records {topic} as {record.status}, not {status}"
    if attempt is not None and attempt != record.attempt:
        return f"the database records {topic} at attempt {record.attempt}, not {attempt}"
    return None
