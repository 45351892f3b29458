"""messaging_send against a fake provider: batching, progress, per-recipient failures."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from domains.messaging.providers import DeliveryFailure, OutgoingEmail
from domains.messaging.services import BatchDone, messaging_send


class FakeProvider:
    def __init__(self, refuse: set[str] | None = None, down: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.refuse = refuse or set()
        self.down = down

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[DeliveryFailure]:
        if self.down:
            raise ConnectionRefusedError("provider unreachable")
        self.batches.append([email.to for email in emails])
        return [DeliveryFailure(e.to, "refused") for e in emails if e.to in self.refuse]


def _send(provider: FakeProvider, recipients: list[str], **kwargs: object) -> dict[str, object]:
    return messaging_send(
        1,
        subject="Hi",
        body="Body",
        recipients=recipients,
        provider=provider,
        batch_size=kwargs.pop("batch_size", 2),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


def test_valid_unique_addresses_go_out_in_batches_and_failures_are_reported_per_address() -> None:
    # given a provider that refuses one address, and a duplicate and an invalid address
    provider = FakeProvider(refuse={"c@example.com"})
    recipients = [
        "a@example.com",
        "b@example.com",
        " A@EXAMPLE.com ",  # the same person again
        "not an address",
        "c@example.com",
        "d@example.com",
        "e@example.com",
    ]

    # when the send runs in batches of two
    result = _send(provider, recipients)

    # then valid unique addresses go out in order and each failure is reported with its reason
    assert provider.batches == [
        ["a@example.com", "b@example.com"],
        ["c@example.com", "d@example.com"],
        ["e@example.com"],
    ]
    assert result == {
        "sent": 4,
        "failed": 2,
        "failed_addresses": [
            {"address": "not an address", "reason": "invalid_address"},
            {"address": "c@example.com", "reason": "refused"},
        ],
    }


def test_progress_is_reported_after_every_batch_with_a_paced_estimate() -> None:
    # given five recipients paced 1.5 s apart
    seen: list[BatchDone] = []
    pauses: list[float] = []

    # when they are sent in batches of two
    _send(
        FakeProvider(),
        [f"s{i}@example.com" for i in range(5)],
        send_interval=1.5,
        on_batch=seen.append,
        sleep=pauses.append,
    )

    # then progress follows every batch, with the pauses between batches only
    assert [(b.index, b.batches, b.processed, b.total) for b in seen] == [
        (1, 3, 2, 5),
        (2, 3, 4, 5),
        (3, 3, 5, 5),
    ]
    assert pauses == [1.5, 1.5]  # between batches, not before the first or after the last
    assert seen[0].remaining == pytest.approx(3.0, abs=0.1)  # two more batches, 1.5 s apart
    assert seen[-1].remaining == 0


def test_only_invalid_addresses_send_nothing_and_report_each() -> None:
    # given only invalid addresses
    provider = FakeProvider()

    # when they are sent
    result = _send(provider, ["x", "y@"])

    # then no batch goes out and each address is a failure
    assert provider.batches == []
    assert result["sent"] == 0
    assert result["failed"] == 2


def test_an_unreachable_provider_raises_so_the_job_is_retried() -> None:
    # given a provider that cannot be reached
    # when/then sending raises, so the runner retries the job
    with pytest.raises(ConnectionRefusedError):
        _send(FakeProvider(down=True), ["a@example.com"])


def test_F13_invisible_characters_and_fullwidth_letters_do_not_make_a_second_recipient() -> None:
    # given one mailbox spelled four ways
    provider = FakeProvider()
    recipients = [
        "kim@example.com",
        "kim@example.com\u200b",
        "\ufeffKIM@example.com",
        "\uff4b\uff49\uff4d\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",
    ]

    # when
    result = _send(provider, recipients)

    # then it gets one message, in its first spelling
    assert provider.batches == [["kim@example.com"]]
    assert result == {"sent": 1, "failed": 0, "failed_addresses": []}


def test_what_before_batch_raises_stops_the_sending_before_that_batch() -> None:
    # given five recipients in batches of two, and a check that fails from the second batch on
    provider = FakeProvider()
    checks: list[int] = []

    def before_batch() -> None:
        checks.append(len(provider.batches))
        if len(provider.batches) >= 1:
            raise RuntimeError("cancelled")

    recipients = [f"r{i}@example.com" for i in range(5)]

    # when the message is sent
    with pytest.raises(RuntimeError, match="cancelled"):
        _send(provider, recipients, before_batch=before_batch)

    # then the check ran before each batch, and only the first batch went out
    assert checks == [0, 1]
    assert provider.batches == [recipients[:2]]
