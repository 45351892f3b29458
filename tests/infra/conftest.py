"""Fixtures of the infra/aws tests: AWS clients on the test run's moto server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.infra.support import QueueStack, aws_client, template_text


@pytest.fixture
def queue_stack() -> Iterator[QueueStack]:
    """infra/aws/queues.yaml deployed by moto's CloudFormation, under a prefix of its own."""
    suffix = uuid.uuid4().hex[:8]
    stack = QueueStack(
        name=f"academy-queues-{suffix}",
        prefix=f"t{suffix}-",
        cloudformation=aws_client("cloudformation"),
        sqs=aws_client("sqs"),
    )
    stack.cloudformation.create_stack(
        StackName=stack.name,
        TemplateBody=template_text("queues.yaml"),
        Parameters=[{"ParameterKey": "QueuePrefix", "ParameterValue": stack.prefix}],
    )
    yield stack
    stack.cloudformation.delete_stack(StackName=stack.name)
