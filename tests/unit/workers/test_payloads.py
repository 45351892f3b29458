"""The messaging.send payload: limits from settings, addresses checked later, per recipient."""

from __future__ import annotations

from django.test import override_settings

from domains.messaging.payloads import MessagingSendPayload

VALID = {"subject": "Hello", "body": "  Indented body\n", "recipients": ["a@example.com", "x"]}


def test_a_valid_payload_keeps_its_body_verbatim_and_accepts_any_address_text() -> None:
    # given a valid payload with an indented body and an address-like text
    payload = MessagingSendPayload(data=VALID)

    # when/then it validates and keeps the body and the recipients as given
    assert payload.is_valid(), payload.errors
    assert payload.validated_data["body"] == "  Indented body\n"
    assert payload.validated_data["recipients"] == ["a@example.com", "x"]


def test_a_subject_must_be_one_line_and_not_too_long() -> None:
    # given a subject with a header injected, and one over 200 characters
    multiline = MessagingSendPayload(data={**VALID, "subject": "a\r\nBcc: x@example.com"})
    too_long = MessagingSendPayload(data={**VALID, "subject": "s" * 201})

    # when/then neither validates
    assert not multiline.is_valid()
    assert "subject" in multiline.errors
    assert not too_long.is_valid()
    assert "subject" in too_long.errors


def test_recipient_limits_come_from_settings() -> None:
    # given a limit of one recipient in the settings
    # when/then the payload with two is refused, as is one with none
    with override_settings(MESSAGING_MAX_RECIPIENTS=1):
        payload = MessagingSendPayload(data=VALID)
        assert not payload.is_valid()
    assert "recipients" in payload.errors
    assert not MessagingSendPayload(data={**VALID, "recipients": []}).is_valid()
