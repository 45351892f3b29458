"""The ``video_encode`` job's payload: which video to encode (the row holds everything else)."""

from __future__ import annotations

import uuid

from rest_framework import serializers

VIDEO_ENCODE = "video_encode"


class VideoEncodePayload(serializers.Serializer):
    video_id = serializers.UUIDField()

    def validate_video_id(self, value: uuid.UUID) -> str:
        return str(value)  # stored as JSON
