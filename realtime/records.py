"""The rule that keeps an operator's ``publish_state`` from contradicting the database record.

The push core knows no business model (ARCHITECTURE.md layers), yet ``publish_state`` must not
write a state that contradicts the record (PROTOCOL.md §5a). The record's state comes from the
hook each app registers for rebuilds (:mod:`realtime.rebuild`); this module only holds the rule.

Pure logic: no Django imports.
"""

from __future__ import annotations

from realtime.keys import Topic
from realtime.state import Change


def contradiction(
    record: Change | None, *, tenant_id: int, topic: Topic, status: str, attempt: int | None
) -> str | None:
    """Why publishing ``status`` (and ``attempt``) would contradict the record, or None.

    A state agrees with its record when it names the recorded status and, if it names an
    attempt, the recorded attempt: the command may republish or add progress to the truth,
    never move a topic somewhere its record is not.
    """
    if record is None:
        return f"tenant {tenant_id} has no {topic.kind.value} {topic.id} in the database"
    if status != str(record.status):
        return f"the database records {topic} as {record.status}, not {status}"
    if attempt is not None and attempt != record.attempt:
        return f"the database records {topic} at attempt {record.attempt}, not {attempt}"
    return None
