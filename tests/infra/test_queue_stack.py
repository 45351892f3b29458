"""infra/aws/queues.yaml deployed by moto's CloudFormation over HTTP, then used like SQS.

The stack goes through moto's server (the test run's AWS_ENDPOINT_URL), so the template is
what creates the queues: their attributes and the redrive to the dead-letter queue are the
template's, not the project's ``create_queues``.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from tests.infra.support import QueueStack, worker_queue_configs

KINDS = sorted(settings.WORKER_QUEUES)


@pytest.mark.parametrize("kind", KINDS)
def test_the_stack_creates_each_queue_with_the_projects_attributes(
    queue_stack: QueueStack, kind: str
) -> None:
    # given
    config = worker_queue_configs()[kind]
    status = queue_stack.cloudformation.describe_stacks(StackName=queue_stack.name)["Stacks"][0]

    # when
    attributes = queue_stack.sqs.get_queue_attributes(
        QueueUrl=queue_stack.queue_url(f"{queue_stack.prefix}{kind}"), AttributeNames=["All"]
    )["Attributes"]
    dlq_arn = queue_stack.sqs.get_queue_attributes(
        QueueUrl=queue_stack.queue_url(f"{queue_stack.prefix}{kind}-dlq"),
        AttributeNames=["QueueArn"],
    )["Attributes"]["QueueArn"]
    redrive = json.loads(attributes["RedrivePolicy"])

    # then
    assert status["StackStatus"] == "CREATE_COMPLETE"
    assert int(attributes["VisibilityTimeout"]) == config.visibility_timeout
    assert int(attributes["ReceiveMessageWaitTimeSeconds"]) == settings.SQS_WAIT_TIME_SECONDS
    assert int(redrive["maxReceiveCount"]) == settings.SQS_MAX_RECEIVE_COUNT
    assert redrive["deadLetterTargetArn"] == dlq_arn


def test_a_message_received_three_times_without_deletion_lands_in_the_dead_letter_queue(
    queue_stack: QueueStack,
) -> None:
    # given: a job message on the ai queue, which three attempts receive and give back
    sqs = queue_stack.sqs
    queue = queue_stack.queue_url(f"{queue_stack.prefix}ai")
    dead_letters = queue_stack.queue_url(f"{queue_stack.prefix}ai-dlq")
    sqs.send_message(QueueUrl=queue, MessageBody='{"job_id":"poison","tenant_id":1}')
    counts = []
    for _ in range(3):
        (message,) = sqs.receive_message(
            QueueUrl=queue, WaitTimeSeconds=0, AttributeNames=["ApproximateReceiveCount"]
        )["Messages"]
        counts.append(int(message["Attributes"]["ApproximateReceiveCount"]))
        # a failed attempt releases its message, as the worker does
        sqs.change_message_visibility(
            QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )

    # when: a fourth receive
    fourth = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", [])
    dead = sqs.receive_message(QueueUrl=dead_letters, WaitTimeSeconds=0).get("Messages", [])

    # then: SQS moved it to the dead-letter queue instead of handing it out again
    assert counts == [1, 2, 3]
    assert fourth == []
    assert [m["Body"] for m in dead] == ['{"job_id":"poison","tenant_id":1}']


def test_a_message_received_twice_stays_on_its_queue(queue_stack: QueueStack) -> None:
    # given
    sqs = queue_stack.sqs
    queue = queue_stack.queue_url(f"{queue_stack.prefix}messaging")
    dead_letters = queue_stack.queue_url(f"{queue_stack.prefix}messaging-dlq")
    sqs.send_message(QueueUrl=queue, MessageBody="retry me")
    for _ in range(2):
        (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)["Messages"]
        sqs.change_message_visibility(
            QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )

    # when
    third = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", [])
    dead = sqs.receive_message(QueueUrl=dead_letters, WaitTimeSeconds=0).get("Messages", [])

    # then
    assert [m["Body"] for m in third] == ["retry me"]
    assert dead == []
