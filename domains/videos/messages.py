"""Messages a teacher reads when a video cannot be encoded, in Korean and English. Pure: no Django.

The encoding modules are pure and run in a worker, and the state they end in is shown later in
a browser, so a message travels as a stable ``code`` with both texts (the pattern of
``domains.students.messages``, kept separate so the two domains do not depend on each other).
The Django layer picks the text for the active language; the status hash's ``error`` carries
the Korean text, the users' language, and logs carry the ``code`` and the technical detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Message:
    code: str
    ko: str
    en: str

    def format(self, **params: Any) -> Message:
        return Message(self.code, self.ko.format(**params), self.en.format(**params))

    def text(self, language: str | None) -> str:
        return self.ko if (language or "").lower().startswith("ko") else self.en


# --- The source file (ffprobe): the teacher can fix these by uploading another file ----------
UNREADABLE = Message(
    "video_unreadable",
    "영상 파일을 읽을 수 없습니다. 파일이 손상되었거나 끝까지 올라가지 않았을 수 있습니다. "
    "원본 파일을 다시 올려 주세요.",
    "The video file cannot be read. It may be damaged or not completely uploaded. "
    "Upload the original file again.",
)
NO_VIDEO_STREAM = Message(
    "video_no_video_stream",
    "파일에 영상(화면)이 없습니다. 소리만 있는 파일이거나 동영상 파일이 아닙니다. "
    "mp4, mov, webm, mkv 동영상 파일을 올려 주세요.",
    "The file has no picture: it is sound only, or not a video. "
    "Upload an mp4, mov, webm or mkv video file.",
)
NO_DURATION = Message(
    "video_no_duration",
    "영상의 길이를 알 수 없습니다. 동영상 편집 프로그램에서 mp4로 다시 저장한 뒤 올려 주세요.",
    "The length of the video cannot be determined. Save it again as MP4 in a video editor "
    "and upload it.",
)

# --- The encoding itself: not the teacher's doing; retrying or an operator can fix these -----
ENCODE_FAILED = Message(
    "video_encode_failed",
    "영상을 변환하지 못했습니다. 잠시 후 다시 시도하고, 계속 실패하면 관리자에게 알려 주세요.",
    "The video could not be converted. Try again later, and tell an administrator if it "
    "keeps failing.",
)
OUTPUT_INVALID = Message(
    "video_output_invalid",
    "변환된 영상이 원본과 맞지 않아 게시하지 않았습니다. 원본 파일이 끝까지 올라갔는지 "
    "확인하고 다시 올려 주세요.",
    "The converted video does not match the original, so it was not published. Check that "
    "the original file uploaded completely and upload it again.",
)
TIMED_OUT = Message(
    "video_timed_out",
    "영상 변환이 제한 시간을 넘겨 중단되었습니다. 영상을 짧게 나누어 다시 올려 주세요.",
    "Converting the video took longer than allowed and was stopped. Split the video into "
    "shorter parts and upload them again.",
)
SOURCE_MISSING = Message(
    "video_source_missing",
    "올린 영상 파일을 찾을 수 없습니다. 파일을 다시 올려 주세요.",
    "The uploaded video file can no longer be found. Upload the file again.",
)
