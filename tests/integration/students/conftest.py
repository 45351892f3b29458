"""Fixtures of the student import tests."""

from __future__ import annotations

import pytest

from tests.support.students import RecordingProgress


@pytest.fixture
def progress() -> RecordingProgress:
    return RecordingProgress()
