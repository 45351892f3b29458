"""The mail provider port and its Django email implementation.

The port is small on purpose: send a batch, say which addresses the provider refused, raise when
the provider itself cannot be reached (the job is then retried). Tests use a fake; production
uses Django's email backends: SMTP in production, console or file in development, locmem in
tests (``EMAIL_BACKEND``).
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.mail import BadHeaderError, EmailMessage, get_connection

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    to: str
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    address: str
    reason: str  # a stable code: invalid_address, refused, rejected, not_sent


class EmailProvider(Protocol):
    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[DeliveryFailure]:
        """Send each email; return the ones refused. Raise if the provider is unreachable."""
        ...


class DjangoEmailProvider:
    """One connection per batch, one message per recipient (recipients never see each other)."""

    def __init__(self, *, from_email: str | None = None) -> None:
        self.from_email = from_email or settings.DEFAULT_FROM_EMAIL

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[DeliveryFailure]:
        failures: list[DeliveryFailure] = []
        connection = get_connection(fail_silently=False)
        connection.open()  # an unreachable provider raises here: the batch is retried
        try:
            for email in emails:
                message = EmailMessage(
                    subject=email.subject,
                    body=email.body,
                    from_email=self.from_email,
                    to=[email.to],
                    connection=connection,
                )
                try:
                    sent = connection.send_messages([message])
                except smtplib.SMTPRecipientsRefused:
                    failures.append(DeliveryFailure(email.to, "refused"))
                except smtplib.SMTPDataError as exc:
                    logger.info("message to one recipient rejected: %s", exc.smtp_code)
                    failures.append(DeliveryFailure(email.to, "rejected"))
                except (BadHeaderError, ValueError):
                    failures.append(DeliveryFailure(email.to, "invalid_address"))
                else:
                    if not sent:
                        failures.append(DeliveryFailure(email.to, "not_sent"))
        finally:
            connection.close()
        return failures
