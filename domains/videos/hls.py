"""HLS output: parse and validate playlists before READY, rewrite them for playback. Pure.

Why validate: ffmpeg's exit code does not say the output is whole. A truncated source encodes
with exit code 0 into a short but well-formed VOD playlist (1.6 s of a 6 s source, seen), a
run stopped with ``q`` exits 0 with a complete playlist, and a killed run leaves 0-byte files.
:func:`validate_output` therefore checks, on the local output directory:

- the master playlist lists exactly the expected variant playlists, each with a BANDWIDTH;
- each variant playlist is complete: ``#EXTM3U``, ``#EXT-X-PLAYLIST-TYPE:VOD``,
  ``#EXT-X-TARGETDURATION``, at least one segment, ``#EXT-X-ENDLIST``; every ``#EXTINF``
  is positive and, rounded, at most the target duration (RFC 8216 §4.3.3.1);
- every referenced file (segments, ``#EXT-X-MAP`` init sections) is a relative path inside
  the directory, exists, and is not empty; no unfinished ``.tmp`` file is left;
- each variant's ``#EXTINF`` durations add up to the probed duration within a tolerance
  (default: the larger of 1 s and 0.5 % of the duration).

It raises :class:`HlsInvalid` listing every problem found, or returns an :class:`HlsOutput`
naming the files to upload, playlists last and the master very last, so that a player never
sees a playlist whose segments are not there yet.

Playback of a private video: relative URIs in a playlist do not inherit a presigned URL's
query string, so the playback endpoint rewrites each URI with :func:`rewrite_playlist` (a
callback returns the signed URL) and can find the object behind a URI with
:func:`resolve_uri`.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from domains.videos import messages as m
from domains.videos.messages import Message

MASTER_PLAYLIST = "master.m3u8"
PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
CONTENT_TYPES: Mapping[str, str] = {
    ".m3u8": PLAYLIST_CONTENT_TYPE,  # IANA; RFC 8216 §4
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",  # IANA's registration for .m4s fMP4 segments
    ".mp4": "video/mp4",  # fMP4 init sections (#EXT-X-MAP)
}
ABSOLUTE_TOLERANCE_S = 1.0
RELATIVE_TOLERANCE = 0.005

_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')
_QUOTED_URI = re.compile(r'URI="([^"]*)"')


def content_type(name: str) -> str:
    """The Content-Type to store an output file with, from its extension.

    Raises ``ValueError`` for an extension the encoder does not write, so nothing is stored
    with a guessed type.
    """
    suffix = posixpath.splitext(name)[1].lower()
    try:
        return CONTENT_TYPES[suffix]
    except KeyError:
        raise ValueError(f"no content type for {name!r}: not an HLS output file") from None


class PlaylistError(ValueError):
    """The text is not an HLS playlist at all (no ``#EXTM3U`` first line)."""


@dataclass(frozen=True, slots=True)
class Variant:
    uri: str
    bandwidth: int | None
    resolution: tuple[int, int] | None
    codecs: str | None


@dataclass(frozen=True, slots=True)
class MasterPlaylist:
    variants: tuple[Variant, ...]


@dataclass(frozen=True, slots=True)
class Segment:
    uri: str
    duration: float


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    target_duration: int | None
    playlist_type: str | None
    ended: bool
    segments: tuple[Segment, ...]
    init_uri: str | None
    """The ``#EXT-X-MAP`` URI (fMP4 init section), ``None`` for MPEG-TS."""

    @property
    def total_duration(self) -> float:
        return sum(segment.duration for segment in self.segments)


def _lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines()]
    if not lines or lines[0].lstrip("\ufeff") != "#EXTM3U":
        raise PlaylistError("the playlist does not start with #EXTM3U")
    return lines


def _attributes(value: str) -> dict[str, str]:
    return {key: raw.strip('"') for key, raw in _ATTRIBUTE.findall(value)}


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def parse_master(text: str) -> MasterPlaylist:
    """The variants of a master playlist (``#EXT-X-STREAM-INF`` and the URI line after it)."""
    variants: list[Variant] = []
    pending: dict[str, str] | None = None
    for line in _lines(text)[1:]:
        if line.startswith("#EXT-X-STREAM-INF:"):
            pending = _attributes(line.partition(":")[2])
        elif line and not line.startswith("#") and pending is not None:
            width, _, height = pending.get("RESOLUTION", "").partition("x")
            size = (_int_or_none(width), _int_or_none(height))
            variants.append(
                Variant(
                    uri=line,
                    bandwidth=_int_or_none(pending.get("BANDWIDTH")),
                    resolution=(size[0], size[1])
                    if size[0] is not None and size[1] is not None
                    else None,
                    codecs=pending.get("CODECS"),
                )
            )
            pending = None
    return MasterPlaylist(variants=tuple(variants))


def parse_media(text: str) -> MediaPlaylist:
    """Segments and completeness markers of a media (variant) playlist.

    A malformed ``#EXTINF`` duration parses as NaN, which :func:`check_media` reports.
    """
    target: int | None = None
    playlist_type: str | None = None
    ended = False
    init_uri: str | None = None
    segments: list[Segment] = []
    pending: float | None = None
    for line in _lines(text)[1:]:
        tag, _, value = line.partition(":")
        if tag == "#EXT-X-TARGETDURATION":
            target = _int_or_none(value)
        elif tag == "#EXT-X-PLAYLIST-TYPE":
            playlist_type = value
        elif tag == "#EXT-X-ENDLIST":
            ended = True
        elif tag == "#EXT-X-MAP":
            init_uri = _attributes(value).get("URI")
        elif tag == "#EXTINF":
            try:
                pending = float(value.partition(",")[0])
            except ValueError:
                pending = math.nan
        elif line and not line.startswith("#"):
            segments.append(Segment(uri=line, duration=pending if pending is not None else 0.0))
            pending = None
    return MediaPlaylist(
        target_duration=target,
        playlist_type=playlist_type,
        ended=ended,
        segments=tuple(segments),
        init_uri=init_uri,
    )


def duration_tolerance(duration: float) -> float:
    """How far the segments' total may be from the probed duration, in seconds."""
    return max(ABSOLUTE_TOLERANCE_S, RELATIVE_TOLERANCE * duration)


def check_master(text: str, expected_variants: Sequence[str]) -> list[str]:
    """Problems with a master playlist's text (an empty list when it is fine)."""
    try:
        master = parse_master(text)
    except PlaylistError as error:
        return [f"master playlist: {error}"]
    listed = [variant.uri for variant in master.variants]
    missing = [uri for uri in expected_variants if uri not in listed]
    unexpected = [uri for uri in listed if uri not in expected_variants]
    problems = [f"master playlist: variant {uri} is missing" for uri in missing]
    problems += [f"master playlist: unexpected variant {uri}" for uri in unexpected]
    problems += [
        f"master playlist: variant {uri} is listed {listed.count(uri)} times"
        for uri in sorted(set(listed))
        if listed.count(uri) > 1
    ]
    problems += [
        f"master playlist: variant {variant.uri} has no BANDWIDTH"
        for variant in master.variants
        if not variant.bandwidth
    ]
    return problems


def check_media(
    text: str, *, duration: float, tolerance: float | None = None, name: str = "playlist"
) -> list[str]:
    """Problems with a variant playlist's text, given the probed ``duration`` in seconds."""
    try:
        playlist = parse_media(text)
    except PlaylistError as error:
        return [f"{name}: {error}"]
    problems: list[str] = []
    if playlist.playlist_type != "VOD":
        problems.append(f"{name}: not a VOD playlist (type {playlist.playlist_type or 'absent'})")
    if not playlist.ended:
        problems.append(f"{name}: no #EXT-X-ENDLIST, the playlist is unfinished")
    if playlist.target_duration is None:
        problems.append(f"{name}: no valid #EXT-X-TARGETDURATION")
    if not playlist.segments:
        problems.append(f"{name}: no segments")
        return problems
    for segment in playlist.segments:
        if not (segment.duration > 0):  # also NaN
            problems.append(f"{name}: segment {segment.uri} has no positive #EXTINF duration")
        elif playlist.target_duration is not None and (
            round(segment.duration) > playlist.target_duration
        ):
            problems.append(
                f"{name}: segment {segment.uri} lasts {segment.duration:.3f} s, more than the "
                f"target duration {playlist.target_duration} s"
            )
    allowed = duration_tolerance(duration) if tolerance is None else tolerance
    total = playlist.total_duration
    if not abs(total - duration) <= allowed:
        problems.append(
            f"{name}: segments add up to {total:.3f} s, the source lasts {duration:.3f} s "
            f"(tolerance {allowed:.3f} s)"
        )
    return problems


class HlsInvalid(Exception):
    """The output must not be published. ``problems`` says why, for the logs."""

    message: Message = m.OUTPUT_INVALID

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)

    @property
    def code(self) -> str:
        return self.message.code


@dataclass(frozen=True, slots=True)
class HlsOutput:
    """A validated output directory. Paths are relative to it, with ``/`` separators."""

    master: str
    playlists: tuple[str, ...]
    """Variant playlists, in the master's order."""
    files: tuple[str, ...]
    """Segments and init sections."""
    durations: Mapping[str, float] = field(default_factory=dict)
    """Each variant playlist's total ``#EXTINF`` seconds."""

    @property
    def upload_order(self) -> tuple[str, ...]:
        """Media files first, then the variant playlists, the master playlist last."""
        return (*self.files, *self.playlists, self.master)


def _relative_file(base: str, uri: str) -> str | None:
    """``uri`` resolved against the directory ``base`` (both relative), or ``None`` if unsafe."""
    if "://" in uri or uri.startswith("/") or "\\" in uri or "?" in uri or "#" in uri:
        return None
    path = posixpath.normpath(posixpath.join(base, uri))
    if path == ".." or path.startswith("../"):
        return None
    return path


def _check_file(directory: Path, path: str, problems: list[str], referrer: str) -> None:
    target = directory / path
    if not target.is_file():
        problems.append(f"{referrer}: {path} does not exist")
    elif target.stat().st_size == 0:
        problems.append(f"{referrer}: {path} is empty")


def _read(directory: Path, path: str, problems: list[str]) -> str | None:
    target = directory / path
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(f"{path} does not exist")
        return None
    except (OSError, UnicodeDecodeError) as error:
        problems.append(f"{path} cannot be read: {error}")
        return None
    if not text.strip():
        problems.append(f"{path} is empty")
        return None
    return text


def validate_output(
    directory: str | Path,
    *,
    expected_variants: Sequence[str],
    duration: float,
    tolerance: float | None = None,
    master: str = MASTER_PLAYLIST,
) -> HlsOutput:
    """Check an encoder's output directory before it is published (see the module doc).

    ``expected_variants`` are the variant playlist URIs the master must list (for our encoder
    ``domains.videos.ffmpeg.variant_playlist_uris(ladder)``); ``duration`` is the probed
    duration in seconds. Raises :class:`HlsInvalid` with every problem found.
    """
    root = Path(directory)
    problems: list[str] = []
    master_text = _read(root, master, problems)
    if master_text is not None:
        problems += check_master(master_text, expected_variants)

    playlists: list[str] = []
    files: list[str] = []
    durations: dict[str, float] = {}
    for uri in expected_variants:
        path = _relative_file(posixpath.dirname(master), uri)
        if path is None:
            problems.append(f"variant URI {uri!r} is not a relative path inside the output")
            continue
        text = _read(root, path, problems)
        if text is None:
            continue
        problems += check_media(text, duration=duration, tolerance=tolerance, name=path)
        try:
            playlist = parse_media(text)
        except PlaylistError:
            continue  # already reported by check_media
        playlists.append(path)
        durations[path] = playlist.total_duration
        referenced = [segment.uri for segment in playlist.segments]
        if playlist.init_uri is not None:
            referenced.insert(0, playlist.init_uri)
        for reference in referenced:
            file = _relative_file(posixpath.dirname(path), reference)
            if file is None:
                problems.append(f"{path}: {reference!r} is not a relative path inside the output")
                continue
            _check_file(root, file, problems, path)
            if file not in files:
                files.append(file)

    if root.is_dir():
        unfinished = sorted(str(p.relative_to(root)) for p in root.rglob("*.tmp"))
        problems += [f"{path} is an unfinished temporary file" for path in unfinished]
    if problems:
        raise HlsInvalid(problems)
    return HlsOutput(
        master=master, playlists=tuple(playlists), files=tuple(files), durations=durations
    )


def rewrite_playlist(text: str, sign: Callable[[str], str]) -> str:
    """``text`` with every URI replaced by ``sign(uri)``: URI lines and ``URI="..."`` tags.

    ``sign`` receives each URI exactly as written (usually relative to the playlist) and
    returns the URL the player should fetch, e.g. a presigned GET for a segment or the
    playback endpoint's URL for a variant playlist. Other lines are kept as they are.
    """

    def signed(uri: str) -> str:
        url = sign(uri)
        if any(character in url for character in '"\r\n'):
            raise ValueError(f"a signed URL cannot go into a playlist: {url!r}")
        return url

    lines = _lines(text)
    out: list[str] = []
    for line in lines:
        if line and not line.startswith("#"):
            out.append(signed(line))
        elif line.startswith("#") and 'URI="' in line:
            out.append(_QUOTED_URI.sub(lambda match: f'URI="{signed(match.group(1))}"', line))
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def resolve_uri(playlist_key: str, uri: str, *, root: str | None = None) -> str:
    """The storage key a relative ``uri`` in the playlist at ``playlist_key`` points to.

    ``root`` (default: the playlist's own directory) is the prefix the result must stay
    under, e.g. the attempt's prefix ``videos/<tenant>/<video>/<attempt>`` for a variant
    playlist one level down. Raises ``ValueError`` for an absolute URI or one that escapes.
    """
    base = posixpath.dirname(playlist_key)
    limit = (root if root is not None else base).rstrip("/")
    relative = _relative_file(base, uri)
    if relative is None or (limit and not relative.startswith(f"{limit}/")):
        raise ValueError(f"{uri!r} in {playlist_key!r} does not stay under {limit!r}")
    return relative
