import re
import uuid

import pytest

from realtime.keys import InvalidTopic, KeySpace, Topic, TopicKind

JOB_ID = uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7")


def test_keys_follow_the_seed_format_with_the_tenant_namespace() -> None:
    # given the default key space and a job topic
    space = KeySpace()
    topic = Topic.job(JOB_ID)

    # when/then its keys are the seeds' format, namespaced by tenant
    assert space.status_key(3, topic) == f"tenant:3:job:{JOB_ID}:status"
    assert space.progress_key(3, topic) == f"tenant:3:job:{JOB_ID}:progress"
    assert space.status_key(3, Topic.video(JOB_ID)) == f"tenant:3:video:{JOB_ID}:status"


def test_the_deployment_prefix_goes_in_front_of_every_key() -> None:
    # given a key space with a deployment prefix
    space = KeySpace(prefix="staging:", layer_prefix="staging:asgi")
    topic = Topic.job(JOB_ID)

    # when/then the prefix leads every key and the channel layer's group channel
    assert space.status_key(3, topic) == f"staging:tenant:3:job:{JOB_ID}:status"
    assert space.group_channel(3, topic) == f"staging:asgi__group__tenant.3.job.{JOB_ID}"


def test_group_names_are_valid_channels_group_names() -> None:
    # given the largest tenant id and a video topic
    # when its group name is built
    group = KeySpace().group(2**62, Topic.video(JOB_ID))

    # then channels accepts it: allowed characters, under 100 long
    assert re.fullmatch(r"[A-Za-z0-9._-]+", group)
    assert len(group) < 100


def test_topics_parse_and_print_round_trip() -> None:
    # given a topic's text
    # when it is parsed
    topic = Topic.parse(f"job:{JOB_ID}")

    # then it is the topic, and prints back as the same text
    assert topic == Topic(TopicKind.JOB, JOB_ID)
    assert str(topic) == f"job:{JOB_ID}"


@pytest.mark.parametrize(
    "raw",
    [
        None,
        42,
        "",
        f"task:{JOB_ID}",
        "job:not-a-uuid-at-all-xxxxxxxxxxxxxxx",
        f"job:{JOB_ID}:status",
        f"tenant:1:job:{JOB_ID}",
        f"job:{JOB_ID}\n",
    ],
)
def test_anything_else_is_not_a_topic(raw: object) -> None:
    # given anything that is not "<kind>:<uuid>" (the parameters)
    # when/then parsing it is refused
    with pytest.raises(InvalidTopic):
        Topic.parse(raw)
