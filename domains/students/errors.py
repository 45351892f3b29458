"""The student domain's errors, as the project's ApplicationError family.

Messages come from :mod:`domains.students.messages` (Korean and English pairs); the text is
chosen lazily, when the error is rendered, for the language active then.
"""

from __future__ import annotations

from django.utils.functional import lazy
from django.utils.translation import get_language

from domains.common.errors import Conflict, NotFound, ValidationFailed
from domains.students.messages import Message


def _text(message: Message) -> str:
    return message.text(get_language())


localized = lazy(_text, str)


class _WithMessage:
    message: Message

    def _bind(self, message: Message) -> None:
        self.message = message
        self.code = message.code


class StudentsImportRejected(_WithMessage, ValidationFailed):
    """The file or the import's parameters are refused as a whole; nothing was written."""

    def __init__(self, message: Message) -> None:
        self._bind(message)
        super().__init__(localized(message))


class StudentsImportBusy(_WithMessage, Conflict):
    """Another import of the same tenant is running."""

    def __init__(self, message: Message) -> None:
        self._bind(message)
        super().__init__(localized(message))


class TenantNotFound(_WithMessage, NotFound):
    def __init__(self, message: Message) -> None:
        self._bind(message)
        super().__init__(localized(message))
