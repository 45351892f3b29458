"""Which renditions to encode a source into: 360p, 720p and 1080p as far as the source allows.

Rules:

- A rung is named by the *short* side of its picture, so a portrait 1080x1920 phone video gets
  the same three rungs as a 1920x1080 one (1080x1920, 720x1280, 360x640).
- No upscaling: a rung is encoded only when the source's short side is at least the rung's.
  A 1280x720 source gets 360p and 720p; an 854x480 one gets 360p only.
- A source smaller than the lowest rung (e.g. 320x240) gets one rendition at its own size.
- Sides are even (H.264 with 4:2:0 chroma needs them even): the long side is scaled to keep
  the aspect ratio and rounded to the nearest even number; an odd source side is rounded down.

Bit rates (video, constrained with ``maxrate``/``bufsize`` so segments stay streamable), from
``research/video_anchors.md`` §2.4:

=========  ==========  ==========  ==========  ======
rung       video kb/s  maxrate     bufsize     audio
=========  ==========  ==========  ==========  ======
1080p      5000        5350        7500        128
720p       2800        2996        4200        128
360p       800         856         1200        128
below      400         428         600         64
=========  ==========  ==========  ==========  ======

1080p/720p/360p at 5000/2800/800 kb/s is the ladder tested there; maxrate is 1.07x and
bufsize 1.5x the target, as in peer5's production HLS guide; audio is AAC at 128 kb/s
(48 kHz stereo), and 64 kb/s with 400 kb/s of video for a tiny source (the note's 240p run).
Lectures are mostly slides or a talking head, so these are generous; tune on real content.
"""

from __future__ import annotations

from dataclasses import dataclass

MAXRATE_FACTOR = 1.07
BUFSIZE_FACTOR = 1.5


@dataclass(frozen=True, slots=True)
class RungSpec:
    """A step of the ladder before it meets a source: short side and target bit rates."""

    short_side: int
    video_kbps: int
    audio_kbps: int


LADDER: tuple[RungSpec, ...] = (
    RungSpec(short_side=360, video_kbps=800, audio_kbps=128),
    RungSpec(short_side=720, video_kbps=2800, audio_kbps=128),
    RungSpec(short_side=1080, video_kbps=5000, audio_kbps=128),
)
# Rates for the single rendition of a source below the lowest rung.
SMALL_VIDEO_KBPS = 400
SMALL_AUDIO_KBPS = 64


@dataclass(frozen=True, slots=True)
class Rung:
    """One rendition to encode: its name (also its directory in the output), size and rates."""

    name: str
    width: int
    height: int
    video_kbps: int
    audio_kbps: int

    @property
    def maxrate_kbps(self) -> int:
        return round(self.video_kbps * MAXRATE_FACTOR)

    @property
    def bufsize_kbps(self) -> int:
        return round(self.video_kbps * BUFSIZE_FACTOR)


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def _even_down(value: int) -> int:
    return max(2, value - value % 2)


def choose_ladder(width: int, height: int) -> tuple[Rung, ...]:
    """The renditions for a source of ``width`` x ``height`` displayed pixels, lowest first.

    Pass the size after rotation (:attr:`domains.videos.probe.Probe.width`/``height``).
    Raises ``ValueError`` for a size that is not positive.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"a video size must be positive, got {width}x{height}")
    short, long = min(width, height), max(width, height)
    portrait = height > width

    def sized(short_side: int) -> tuple[int, int]:
        long_side = _even(long * short_side / short)
        return (short_side, long_side) if portrait else (long_side, short_side)

    rungs = [
        Rung(f"{spec.short_side}p", *sized(spec.short_side), spec.video_kbps, spec.audio_kbps)
        for spec in LADDER
        if spec.short_side <= short
    ]
    if rungs:
        return tuple(rungs)
    own_width, own_height = _even_down(width), _even_down(height)
    own_short = min(own_width, own_height)
    return (Rung(f"{own_short}p", own_width, own_height, SMALL_VIDEO_KBPS, SMALL_AUDIO_KBPS),)
