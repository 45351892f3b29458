"""The payload of a ``messaging.send`` job, validated by the API and again by the worker."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

# RFC 5321: a forward path holds at most 256 octets, an address at most 254.
ADDRESS_MAX_LENGTH = 254


class TextField(serializers.CharField):
    """A JSON string, and only a string: numbers are refused, not turned into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class SubjectField(TextField):
    # What validate_subject refuses inside the trimmed text, for the OpenAPI pattern.
    forbidden_characters = r"\r\n"


class MessagingSendPayload(serializers.Serializer):
    """``{subject, body, recipients: [address, ...]}``.

    Addresses are not checked for syntax here: the job reports each bad one in its result
    (``failed_addresses``) and still sends to the rest.
    """

    subject = SubjectField()
    body = TextField(trim_whitespace=False)
    recipients = serializers.ListField(child=TextField(), allow_empty=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Limits are settings, read when a payload is validated rather than at import.
        self.fields["subject"] = SubjectField(max_length=settings.MESSAGING_SUBJECT_MAX_LENGTH)
        self.fields["recipients"] = serializers.ListField(
            child=TextField(max_length=ADDRESS_MAX_LENGTH),
            allow_empty=False,
            max_length=settings.MESSAGING_MAX_RECIPIENTS,
        )

    def validate_subject(self, value: str) -> str:
        if "\n" in value or "\r" in value:
            raise serializers.ValidationError(_("The subject must be a single line."))
        return value
