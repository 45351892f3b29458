import json
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from realtime import store
from realtime.keys import Topic


def test_publish_state_applies_a_change_and_prints_the_document() -> None:
    # given a new job topic
    topic = Topic.job(uuid.uuid4())
    out = StringIO()

    # when the command publishes PENDING, then PROCESSING at 40 %
    call_command(
        "publish_state", "--tenant", "5", "--topic", str(topic), "--status", "PENDING", stdout=out
    )
    call_command(
        "publish_state",
        "--tenant",
        "5",
        "--topic",
        str(topic),
        "--status",
        "PROCESSING",
        "--percent",
        "40",
        "--step",
        "sending",
        stdout=(out := StringIO()),
    )

    # then it prints the document and Redis holds it
    document = json.loads(out.getvalue())
    assert (document["seq"], document["status"], document["progress"]["percent"]) == (
        2,
        "PROCESSING",
        40,
    )
    assert store.snapshot(5, topic).seq == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "args",
    [
        ["--topic", "job:nope", "--status", "PENDING"],
        ["--topic", f"job:{uuid.uuid4()}", "--status", "READY"],  # not a job status
    ],
)
def test_publish_state_refuses_bad_input(args: list[str]) -> None:
    # given a bad topic or a status a job does not have (the parameters)
    # when/then the command refuses it
    with pytest.raises(CommandError):
        call_command("publish_state", "--tenant", "5", *args)
