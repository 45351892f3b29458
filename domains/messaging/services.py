"""Sending a message to many recipients, in batches, with progress after each batch."""

from __future__ import annotations

import logging
import math
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from domains.common.text import strip_invisible
from domains.messaging.providers import DeliveryFailure, EmailProvider, OutgoingEmail

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchDone:
    index: int  # 1-based
    batches: int
    processed: int  # valid addresses handed to the provider so far
    total: int  # valid addresses in all
    elapsed: float  # seconds since sending started
    remaining: float  # estimated seconds until the last batch is sent, pauses included


def recipients_normalise(recipients: Sequence[str]) -> tuple[list[str], list[DeliveryFailure]]:
    """Unique, syntactically valid addresses in their first spelling, and the invalid ones.

    An address pasted from a web page or a messenger may carry invisible characters or
    fullwidth letters (U+FF41 for ``a``): they are removed and folded (NFKC) before the
    duplicate check, so one mailbox is one recipient (audit F13).
    """
    valid: list[str] = []
    invalid: list[DeliveryFailure] = []
    seen: set[str] = set()
    for raw in recipients:
        address = unicodedata.normalize("NFKC", strip_invisible(raw)).strip()
        key = address.casefold()
        if key in seen:
            continue
        seen.add(key)
        try:
            validate_email(address)
        except ValidationError:
            invalid.append(DeliveryFailure(address, "invalid_address"))
        else:
            valid.append(address)
    return valid, invalid


def messaging_send(
    tenant_id: int,
    *,
    subject: str,
    body: str,
    recipients: Sequence[str],
    provider: EmailProvider,
    batch_size: int,
    send_interval: float = 0.0,
    on_batch: Callable[[BatchDone], None] | None = None,
    before_batch: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Send ``subject``/``body`` to every recipient; invalid or refused addresses are reported.

    Returns ``{sent, failed, failed_addresses: [{address, reason}]}``. A provider that cannot be
    reached raises, so the job is retried; a refused address is a result, not an error.
    ``before_batch`` is called right before each batch goes out; what it raises stops the
    sending there (the job was cancelled), the batches already sent staying sent.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    valid, failures = recipients_normalise(recipients)
    batches = math.ceil(len(valid) / batch_size)
    started = time.monotonic()
    sent = 0
    for index in range(batches):
        if index and send_interval > 0:
            sleep(send_interval)
        if before_batch is not None:
            before_batch()
        chunk = valid[index * batch_size : (index + 1) * batch_size]
        refused = provider.send_batch(
            [OutgoingEmail(to=address, subject=subject, body=body) for address in chunk]
        )
        sent += len(chunk) - len(refused)
        failures.extend(refused)
        if on_batch is not None:
            elapsed = time.monotonic() - started
            # Each batch so far cost its send time plus one pause (the first had none).
            per_batch = (elapsed + send_interval) / (index + 1)
            on_batch(
                BatchDone(
                    index=index + 1,
                    batches=batches,
                    processed=min(len(valid), (index + 1) * batch_size),
                    total=len(valid),
                    elapsed=elapsed,
                    remaining=per_batch * (batches - index - 1),
                )
            )
    logger.info(
        "messages sent tenant=%s sent=%s failed=%s batches=%s",
        tenant_id,
        sent,
        len(failures),
        batches,
    )
    return {
        "sent": sent,
        "failed": len(failures),
        "failed_addresses": [{"address": f.address, "reason": f.reason} for f in failures],
    }
