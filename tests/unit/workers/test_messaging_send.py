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

    result = _send(provider, recipients)

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
    seen: list[BatchDone] = []
    pauses: list[float] = []

    _send(
        FakeProvider(),
        [f"s{i}@example.com" for i in range(5)],
        send_interval=1.5,
        on_batch=seen.append,
        sleep=pauses.append,
    )

    assert [(b.index, b.batches, b.processed, b.total) for b in seen] == [
        (1, 3, 2, 5),
        (2, 3, 4, 5),
        (3, 3, 5, 5),
    ]
    assert pauses == [1.5, 1.5]  # between batches, not before the first or after the last
    assert seen[0].remaining == pytest.approx(3.0, abs=0.1)  # two more batches, 1.5 s apart
    assert seen[-1].remaining == 0


def test_only_invalid_addresses_send_nothing_and_report_each() -> None:
    provider = FakeProvider()

    result = _send(provider, ["x", "y@"])

    assert provider.batches == []
    assert result["sent"] == 0
    assert result["failed"] == 2


def test_an_unreachable_provider_raises_so_the_job_is_retried() -> None:
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
